import {
	createExecutionContext,
	env,
	runDurableObjectAlarm,
	runInDurableObject,
	waitOnExecutionContext,
} from "cloudflare:test";
import { eq } from "drizzle-orm";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { signNodeRequest, verifyNodeRequest } from "../calls/node-signature.ts";
import { pickNode, staleNodes } from "../calls/service.ts";
import { turnCredential } from "../calls/turn.ts";
import { loadConfig } from "../config/config.ts";
import { openDatabase } from "../db/client.ts";
import { mediaNodes } from "../db/schema/index.ts";
import worker from "../index.ts";
import type { NotificationJob } from "../notifications/consumer.ts";
import { call, type SignedIn, signUp } from "./helpers.ts";
import { nodeHeartbeat } from "./media-nodes.ts";
import { createGroup, TestSocket } from "./sockets.ts";

type Join = {
	url: string;
	token: string;
	iceServers: Array<{ urls: string | string[]; username?: string; credential?: string }>;
	turn: string;
};
type CallBody = {
	call: { id: string; state: string; participants: Array<{ userId: string; state: string }> };
	join: Join;
};

const NODE_URL = "ws://media.test:8790/v1/rtc";

const heartbeat = (
	body: Record<string, unknown>,
	secret = env.MEDIA_NODE_SECRET ?? "",
	timestamp = String(Math.floor(Date.now() / 1000)),
) => nodeHeartbeat(body, { secret, timestamp });

const node = {
	nodeId: "node-test-1",
	url: NODE_URL,
	region: "local",
	capacity: 500,
	load: { calls: 0, peers: 0 },
	draining: false,
};

beforeAll(async () => {
	expect((await heartbeat(node)).status).toBe(204);
});

async function startCall(caller: SignedIn, conversationId: string, media = "video") {
	return call<CallBody>("/v1/calls", { token: caller.accessToken, body: { conversationId, media } });
}

describe("media node registry", () => {
	it("accepts signed heartbeats only", async () => {
		expect((await heartbeat({ ...node, nodeId: "node-x" }, "wrong-secret-wrong-secret-wrong-secret")).status).toBe(401);
		const stale = String(Math.floor(Date.now() / 1000) - 600);
		expect((await heartbeat({ ...node, nodeId: "node-x" }, undefined, stale)).status).toBe(401);
		expect((await heartbeat({ nodeId: "node-x" })).status).toBe(400);
	});

	it("reports a node that stops beating and gives it no new calls", async () => {
		const silent = { ...node, nodeId: "node-silent", url: "ws://silent.test/v1/rtc", load: { calls: 0, peers: 0 } };
		expect((await heartbeat(silent)).status).toBe(204);
		const config = await loadConfig(env);
		const handle = openDatabase(config.database);
		try {
			await handle.db
				.update(mediaNodes)
				.set({ lastHeartbeatAt: new Date(Date.now() - 120_000) })
				.where(eq(mediaNodes.id, "node-silent"));
			expect((await staleNodes(handle.db)).map((n) => n.id)).toContain("node-silent");
			expect((await pickNode(handle.db, config)).id).not.toBe("node-silent");
		} finally {
			await handle.close();
		}
	});

	it("signs as documented: v1=hex(HMAC-SHA256(secret, timestamp.body))", async () => {
		const signature = await signNodeRequest("s3cret", "1700000000", "{}");
		expect(signature).toMatch(/^v1=[0-9a-f]{64}$/);
		expect(await verifyNodeRequest("s3cret", "1700000000", signature, "{}", 1_700_000_010_000)).toBe(true);
		expect(await verifyNodeRequest("s3cret", "1700000000", signature, "{ }", 1_700_000_010_000)).toBe(false);
	});
});

describe("call lifecycle", () => {
	it("start rings the members; the call token admits one user to one call for at most 2 minutes", async () => {
		const a = await signUp();
		const b = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		const channel = await TestSocket.open("/v1/ws", b.accessToken);
		await channel.next("ready");
		const res = await startCall(a, id);
		expect(res.status).toBe(201);
		expect(res.body.call).toMatchObject({ state: "ringing" });
		expect(res.body.call.participants).toEqual(
			expect.arrayContaining([
				{ userId: a.id, state: "joined" },
				{ userId: b.id, state: "ringing" },
			]),
		);
		expect(res.body.join.url).toBe(NODE_URL);
		const claims = decodeJwt(res.body.join.token);
		expect(claims).toMatchObject({ aud: "secureconnect-media", sub: a.id, cid: res.body.call.id });
		expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeLessThanOrEqual(120);
		const jwks = await call<{ keys: Array<{ kid: string }> }>("/.well-known/jwks.json");
		expect(jwks.body.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(res.body.join.token).kid);
		expect(await channel.next("call", (f) => f.event === "ring")).toMatchObject({
			callId: res.body.call.id,
			userId: a.id,
		});

		const joined = await call<{ join: Join }>(`/v1/calls/${res.body.call.id}/join`, {
			method: "POST",
			token: b.accessToken,
		});
		expect(joined.status).toBe(200);
		expect(decodeJwt(joined.body.join.token).sub).toBe(b.id);
		const state = await call<CallBody>(`/v1/calls/${res.body.call.id}`, { token: a.accessToken });
		expect(state.body.call.state).toBe("active");

		expect((await call(`/v1/calls/${res.body.call.id}/leave`, { method: "POST", token: b.accessToken })).status).toBe(
			204,
		);
		expect((await call(`/v1/calls/${res.body.call.id}/leave`, { method: "POST", token: a.accessToken })).status).toBe(
			204,
		);
		const ended = await call<CallBody>(`/v1/calls/${res.body.call.id}`, { token: a.accessToken });
		expect(ended.body.call.state).toBe("ended");
		channel.close();
	});

	it("declined by everyone rung, the call ends as declined", async () => {
		const a = await signUp();
		const b = await signUp();
		const res = await startCall(a, await createGroup(a.accessToken, [b.id]));
		expect((await call(`/v1/calls/${res.body.call.id}/decline`, { method: "POST", token: b.accessToken })).status).toBe(
			204,
		);
		expect((await call(`/v1/calls/${res.body.call.id}/decline`, { method: "POST", token: b.accessToken })).status).toBe(
			409,
		);
		expect((await call<CallBody>(`/v1/calls/${res.body.call.id}`, { token: a.accessToken })).body.call.state).toBe(
			"declined",
		);
	});

	it("a callee already in a call is busy", async () => {
		const a = await signUp();
		const b = await signUp();
		const c = await signUp();
		const first = await startCall(b, await createGroup(b.accessToken, [c.id]));
		expect(first.status).toBe(201);
		const second = await startCall(a, await createGroup(a.accessToken, [b.id]));
		expect(second.body.call.participants).toContainEqual({ userId: b.id, state: "busy" });
	});

	it("nobody answering in time makes the call missed (Durable Object alarm)", async () => {
		const a = await signUp();
		const b = await signUp();
		const conversation = await createGroup(a.accessToken, [b.id]);
		const res = await startCall(a, conversation, "audio");
		const room = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(conversation));
		await runInDurableObject(room, (_i, state) => {
			state.storage.sql.exec("UPDATE call_timeouts SET at = 0");
		});
		await runDurableObjectAlarm(room);
		const missed = await call<CallBody>(`/v1/calls/${res.body.call.id}`, { token: a.accessToken });
		expect(missed.body.call.state).toBe("missed");
		expect(missed.body.call.participants).toContainEqual({ userId: b.id, state: "missed" });
	});

	it("a group call does not ring, notify or push a member who blocks the caller", async () => {
		const caller = await signUp();
		const blocker = await signUp();
		const other = await signUp();
		const conversation = await createGroup(other.accessToken, [caller.id, blocker.id]);
		expect((await call(`/v1/blocks/${caller.id}`, { method: "PUT", token: blocker.accessToken })).status).toBe(204);
		const [blockerCh, otherCh] = await Promise.all([
			TestSocket.open("/v1/ws", blocker.accessToken),
			TestSocket.open("/v1/ws", other.accessToken),
		]);
		await Promise.all([blockerCh.next("ready"), otherCh.next("ready")]);
		const jobs: NotificationJob[] = [];
		const send = env.NOTIFICATIONS.send.bind(env.NOTIFICATIONS);
		const spy = vi.spyOn(env.NOTIFICATIONS, "send").mockImplementation(async (body, options) => {
			jobs.push(body as NotificationJob);
			return send(body, options);
		});
		try {
			const res = await startCall(caller, conversation);
			expect(res.status).toBe(201);
			const participants = res.body.call.participants.map((p) => p.userId);
			expect(participants).toContain(other.id);
			expect(participants).not.toContain(blocker.id);
			await otherCh.next("call", (f) => f.event === "ring" && f.callId === res.body.call.id);
			const pushed = jobs.flatMap((j) => (j.kind === "push" && j.event === "call" ? [j.userId] : []));
			expect(pushed).toContain(other.id);
			expect(pushed).not.toContain(blocker.id);

			// The blocker hears nothing of it, not even its end.
			expect(
				(await call(`/v1/calls/${res.body.call.id}/end`, { method: "POST", token: caller.accessToken })).status,
			).toBe(204);
			await otherCh.next("call", (f) => f.event === "ended" && f.callId === res.body.call.id);
			expect(blockerCh.frames.filter((f) => f.type === "call")).toEqual([]);
		} finally {
			spy.mockRestore();
			blockerCh.close();
			otherCh.close();
		}
	});

	it("end stops it for everyone; outsiders see 404; blocked direct calls are refused", async () => {
		const a = await signUp();
		const b = await signUp();
		const outsider = await signUp();
		const res = await startCall(a, await createGroup(a.accessToken, [b.id]));
		expect((await call(`/v1/calls/${res.body.call.id}`, { token: outsider.accessToken })).status).toBe(404);
		expect(
			(await call(`/v1/calls/${res.body.call.id}/join`, { method: "POST", token: outsider.accessToken })).status,
		).toBe(404);
		expect((await call(`/v1/calls/${res.body.call.id}/end`, { method: "POST", token: b.accessToken })).status).toBe(
			204,
		);
		expect((await call<CallBody>(`/v1/calls/${res.body.call.id}`, { token: a.accessToken })).body.call.state).toBe(
			"ended",
		);
		expect((await call(`/v1/calls/${res.body.call.id}/join`, { method: "POST", token: b.accessToken })).status).toBe(
			409,
		);

		const direct = await call<{ conversation: { id: string } }>("/v1/conversations", {
			token: a.accessToken,
			body: { type: "direct", memberIds: [outsider.id] },
		});
		await call(`/v1/blocks/${a.id}`, { method: "PUT", token: outsider.accessToken });
		expect((await startCall(a, direct.body.conversation.id)).status).toBe(403);
	});
});

describe("TURN credentials", () => {
	it("say so when TURN is not configured", async () => {
		const a = await signUp();
		const res = await call<{ iceServers: unknown[]; turn: string; ttl: number }>("/v1/turn/credentials", {
			token: a.accessToken,
		});
		expect(res.status).toBe(200);
		expect(res.body.turn).toBe("not_configured");
	});

	it("mint TURN REST credentials coturn accepts: <expiry>:<userId> and base64 HMAC-SHA1", async () => {
		const a = await signUp();
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request("http://api.test/v1/turn/credentials", { headers: { authorization: `Bearer ${a.accessToken}` } }),
			{ ...env, TURN_URLS: "stun:turn.test:3478,turn:turn.test:3478?transport=udp", TURN_TTL_SECONDS: "600" },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		const body = (await res.json()) as {
			iceServers: Array<{ urls: string[]; username?: string; credential?: string }>;
			ttl: number;
			turn: string;
		};
		expect(body.turn).toBe("ok");
		expect(body.ttl).toBe(600);
		const relay = body.iceServers.find((s) => s.username);
		expect(relay?.urls).toEqual(["turn:turn.test:3478?transport=udp"]);
		const [expiry, user] = (relay?.username ?? "").split(":");
		expect(user).toBe(a.id);
		expect(Number(expiry) - Date.now() / 1000).toBeGreaterThan(590);
		expect(relay?.credential).toBe(await turnCredential(env.TURN_SECRET ?? "", relay?.username ?? ""));
	});
});
