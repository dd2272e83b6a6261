// Captures every console line of a full run (register, queued email delivery,
// verify, login, refresh, conversation, socket and REST messages, media node
// webhooks, a call with its token and TURN credentials) and checks that:
//  - each JSON log line carries a request id, and the ids cross every hop:
//    api → Durable Object (socket upgrade), api → queue consumer (email job),
//    Durable Object → queue (push job), api → media node (call token `rid`),
//    media node → api (webhooks' x-request-id);
//  - no password, token, secret or ciphertext appears anywhere in the output.
// The worker, its Durable Objects and its queue consumer run in this test's
// isolate, so spying on `console` sees their lines (the first test proves it).
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from "vitest";
import worker from "../index.ts";
import type { NotificationJob } from "../notifications/consumer.ts";
import { call, codeIn, mailbox, randomIp, unique } from "./helpers.ts";
import { signedNodeRequest } from "./media-nodes.ts";

interface LogLine {
	level?: string;
	msg?: string;
	requestId?: unknown;
	[key: string]: unknown;
}

const lines: string[] = [];
const spies: MockInstance[] = [];
const jobs: NotificationJob[] = [];
/** Everything that must never reach a log: collected as the run produces it. */
const secrets = new Map<string, string>();

function keep(label: string, value: string | undefined): void {
	if (value && value.length >= 8) secrets.set(label, value);
}

const rid = (step: string) => `trace-${step}-${unique()}`;

function parsed(): LogLine[] {
	return lines.flatMap((line) => {
		try {
			const value = JSON.parse(line) as unknown;
			return typeof value === "object" && value !== null ? [value as LogLine] : [];
		} catch {
			return [];
		}
	});
}

const withId = (id: string) => parsed().filter((l) => l.requestId === id);

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

const signedNodeCall = (path: string, body: Record<string, unknown>, requestId: string) =>
	signedNodeRequest(path, body, { requestId });

function randomBase64(bytes: number): string {
	return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))));
}

beforeAll(() => {
	for (const method of ["log", "info", "warn", "error", "debug"] as const) {
		spies.push(
			vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
				lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
			}),
		);
	}
	const send = env.NOTIFICATIONS.send.bind(env.NOTIFICATIONS);
	spies.push(
		vi.spyOn(env.NOTIFICATIONS, "send").mockImplementation(async (body, options) => {
			jobs.push(body as NotificationJob);
			return send(body, options);
		}),
	);
	for (const name of [
		"JWT_SIGNING_KEYS",
		"PASSWORD_PEPPER",
		"MEDIA_NODE_SECRET",
		"TURN_SECRET",
		"ADMIN_TOKEN",
	] as const) {
		keep(`env ${name}`, env[name]);
	}
	for (const key of JSON.parse(env.JWT_SIGNING_KEYS ?? "[]") as Array<{ d?: string }>) keep("signing key d", key.d);
});

afterAll(() => {
	for (const spy of spies) spy.mockRestore();
});

describe("one request id across every hop, and nothing secret in the logs", () => {
	const ids = {
		register: rid("register"),
		verify: rid("verify"),
		login: rid("login"),
		refresh: rid("refresh"),
		conversation: rid("conversation"),
		socket: rid("socket"),
		rest: rid("rest"),
		heartbeat: rid("heartbeat"),
		call: rid("call"),
		turn: rid("turn"),
		events: rid("events"),
	};
	let aliceToken = "";
	let bobId = "";
	let conversationId = "";
	let callId = "";

	it("captures the worker's own lines in this isolate (the assumption the rest relies on)", async () => {
		const id = rid("probe");
		expect((await call("/health", { headers: { "x-request-id": id } })).status).toBe(200);
		expect(withId(id)).toEqual([expect.objectContaining({ msg: "request", route: "/health", status: 200 })]);
	});

	it("register → queued email delivered by the consumer with the register request's id", async () => {
		const email = `trace-${unique()}@example.test`;
		const password = `Tr4ce ${unique()} ${unique()}`;
		keep("alice password", password);
		const ip = randomIp();
		const res = await call<{ user: { id: string } }>("/v1/auth/register", {
			body: { email, password, handle: `tr_${unique()}`, displayName: "Trace Alice" },
			ip,
			headers: { "x-request-id": ids.register },
		});
		expect(res.status).toBe(201);
		expect(res.headers.get("x-request-id")).toBe(ids.register);
		// Through the real queue (batches of up to 1 s), however busy the machine is.
		const mail = await until(
			"the email to be delivered",
			async () => {
				const [first] = await mailbox(email);
				return first && (first as { sentAt?: string | null }).sentAt ? first : undefined;
			},
			30_000,
		);
		const token = codeIn(mail.text);
		keep("verification token", token);
		expect(withId(ids.register).map((l) => l.msg)).toEqual(
			expect.arrayContaining(["request", "email delivered to dev mailbox"]),
		);

		expect(
			(await call("/v1/auth/verify-email", { body: { token }, headers: { "x-request-id": ids.verify } })).status,
		).toBe(204);
		const login = await call<{ accessToken: string; refreshToken: string }>("/v1/auth/login", {
			body: { email, password, deviceName: "trace" },
			ip,
			headers: { "x-request-id": ids.login },
		});
		expect(login.status).toBe(200);
		keep("alice access token", login.body.accessToken);
		keep("alice refresh token", login.body.refreshToken);
		const refreshed = await call<{ accessToken: string; refreshToken: string }>("/v1/auth/refresh", {
			body: { refreshToken: login.body.refreshToken },
			headers: { "x-request-id": ids.refresh },
		});
		expect(refreshed.status).toBe(200);
		keep("alice refreshed access token", refreshed.body.accessToken);
		keep("alice rotated refresh token", refreshed.body.refreshToken);
		aliceToken = refreshed.body.accessToken;
	}, 60_000);

	it("conversation, then a socket message: the Durable Object logs the upgrade's id and the push job keeps it", async () => {
		const bobPassword = `B0b ${unique()} ${unique()}`;
		keep("bob password", bobPassword);
		const bobEmail = `trace-bob-${unique()}@example.test`;
		const reg = await call<{ user: { id: string } }>("/v1/auth/register", {
			body: { email: bobEmail, password: bobPassword, handle: `tb_${unique()}`, displayName: "Trace Bob" },
		});
		expect(reg.status).toBe(201);
		bobId = reg.body.user.id;

		const created = await call<{ conversation: { id: string } }>("/v1/conversations", {
			token: aliceToken,
			body: { type: "group", memberIds: [bobId], title: "Trace" },
			headers: { "x-request-id": ids.conversation },
		});
		expect(created.status).toBe(201);
		conversationId = created.body.conversation.id;

		const res = await SELF.fetch(`http://api.test/v1/conversations/${conversationId}/ws`, {
			headers: {
				upgrade: "websocket",
				"sec-websocket-protocol": `bearer.${aliceToken}, secureconnect.v1`,
				"x-request-id": ids.socket,
			},
		});
		expect(res.status).toBe(101);
		const ws = res.webSocket;
		if (!ws) throw new Error("no socket");
		ws.accept();
		const acked = new Promise<void>((resolve) =>
			ws.addEventListener("message", (e) => {
				if ((JSON.parse(String(e.data)) as { type: string }).type === "ack") resolve();
			}),
		);
		const ciphertext = randomBase64(96);
		keep("socket ciphertext", ciphertext);
		ws.send(JSON.stringify({ type: "send", clientId: `c-${unique()}`, ciphertext }));
		await acked;
		ws.close(1000, "done");

		const hops = withId(ids.socket);
		expect(hops).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ msg: "request", route: "/v1/conversations/:id/ws", status: 101 }),
				expect.objectContaining({ msg: "socket opened", service: "realtime", object: "ChatRoom" }),
			]),
		);
		// Bob has no socket: his user channel queues a content-free push with the socket's request id.
		const push = await until("bob's push job", async () =>
			jobs.find((j) => j.kind === "push" && j.userId === bobId && j.requestId === ids.socket),
		);
		expect(push).toMatchObject({ conversationId, seq: 1 });
	}, 60_000);

	it("a REST message carries its request id into the push job", async () => {
		const ciphertext = randomBase64(80);
		keep("rest ciphertext", ciphertext);
		const sent = await call(`/v1/conversations/${conversationId}/messages`, {
			token: aliceToken,
			body: { clientId: `r-${unique()}`, ciphertext },
			headers: { "x-request-id": ids.rest },
		});
		expect(sent.status).toBe(201);
		await until("the REST push job", async () =>
			jobs.find((j) => j.kind === "push" && j.userId === bobId && j.requestId === ids.rest),
		);
	}, 60_000);

	it("media node → api webhooks keep the node's x-request-id; api → media node: the call token carries `rid`", async () => {
		const node = {
			nodeId: `trace-node-${unique()}`,
			url: "ws://media.test:8790/v1/rtc",
			region: "local",
			capacity: 500,
			load: { calls: 0, peers: 0 },
			draining: false,
		};
		expect((await signedNodeCall("/internal/media-nodes/heartbeat", node, ids.heartbeat)).status).toBe(204);
		expect(withId(ids.heartbeat)).toEqual([
			expect.objectContaining({ msg: "request", route: "/internal/media-nodes/heartbeat", status: 204 }),
		]);

		const started = await call<{ call: { id: string }; join: { token: string } }>("/v1/calls", {
			token: aliceToken,
			body: { conversationId, media: "audio" },
			headers: { "x-request-id": ids.call },
		});
		expect(started.status).toBe(201);
		callId = started.body.call.id;
		keep("call token", started.body.join.token);
		expect(decodeJwt(started.body.join.token).rid).toBe(ids.call);

		const ctx = createExecutionContext();
		const turn = await worker.fetch(
			new Request("http://api.test/v1/turn/credentials", {
				headers: { authorization: `Bearer ${aliceToken}`, "x-request-id": ids.turn },
			}),
			{ ...env, TURN_URLS: "stun:turn.test:3478,turn:turn.test:3478?transport=udp" },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		expect(turn.status).toBe(200);
		const ice = (await turn.json()) as { iceServers: Array<{ username?: string; credential?: string }> };
		for (const server of ice.iceServers) keep("TURN credential", server.credential);

		const events = {
			nodeId: node.nodeId,
			events: [{ id: crypto.randomUUID(), type: "call.started", callId, at: new Date().toISOString() }],
		};
		expect((await signedNodeCall("/internal/media-nodes/events", events, ids.events)).status).toBe(204);
		expect(withId(ids.events).map((l) => l.msg)).toContain("request");
	});

	it("every JSON line names its request; no password, token, secret or ciphertext appears anywhere", () => {
		const json = parsed();
		expect(json.length).toBeGreaterThan(10);
		const anonymous = json.filter((l) => typeof l.requestId !== "string" || l.requestId.length < 8);
		expect(anonymous, "log lines without a request id").toEqual([]);
		for (const id of Object.values(ids)) expect(withId(id).length, `lines for ${id}`).toBeGreaterThan(0);

		expect(secrets.size).toBeGreaterThanOrEqual(14);
		const output = lines.join("\n");
		for (const [label, value] of secrets) {
			expect(output.includes(value), `${label} appears in the logs`).toBe(false);
			// A JWT's signature alone is as good as the token for nothing, but its presence would mean the token leaked.
			const signature = value.split(".")[2];
			if (signature && signature.length > 20) expect(output.includes(signature), `${label} signature`).toBe(false);
		}
	});
});
