// A call whose media node dies moves to a healthy node on the next join:
// atomically (everyone rejoining at once lands on the same node), announced on
// the participants' user channels, and a clear 503 when no node can take it.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { endStrandedCalls, STRANDED_CALL_MS } from "../calls/node-watch.ts";
import { moveCall } from "../calls/service.ts";
import { calls, mediaNodes } from "../db/schema/index.ts";
import worker from "../index.ts";
import { call, type SignedIn, signUp, unique, withDb } from "./helpers.ts";
import { nodeHeartbeat } from "./media-nodes.ts";
import { createGroup, TestSocket } from "./sockets.ts";

type Join = { url: string; token: string };
type ErrorBody = { error: { code: string; message: string; requestId: string } };

const run = unique();
const nodeUrl = (name: string) => `ws://${name}-${run}.media.test:8790/v1/rtc`;
const nodeIds = {
	dead: `fo-${run}-dead`,
	spare: `fo-${run}-spare`,
	draining: `fo-${run}-draining`,
	gone: `fo-${run}-gone`,
};

async function heartbeat(nodeId: string, overrides: Record<string, unknown> = {}) {
	const res = await nodeHeartbeat({
		nodeId,
		url: nodeUrl(nodeId),
		region: "local",
		capacity: 500,
		// Busier than an idle node: other files running alongside expect their own idle node to be picked.
		load: { calls: 1, peers: 1 },
		draining: false,
		...overrides,
	});
	expect(res.status).toBe(204);
}

/** Its last heartbeat two minutes ago: dead by the default 30 s threshold. */
const silence = (nodeId: string) =>
	withDb((db) =>
		db
			.update(mediaNodes)
			.set({ lastHeartbeatAt: new Date(Date.now() - 120_000) })
			.where(eq(mediaNodes.id, nodeId)),
	);

const pinnedNode = (callId: string) =>
	withDb(async (db) => (await db.select({ nodeId: calls.nodeId }).from(calls).where(eq(calls.id, callId)))[0]?.nodeId);

/** A running call between `people` (the first one starts it), pinned to `nodeId` whatever the api chose. */
async function callOn(nodeId: string, people: SignedIn[]): Promise<string> {
	const [caller, ...others] = people as [SignedIn, ...SignedIn[]];
	const conversationId = await createGroup(
		caller.accessToken,
		others.map((p) => p.id),
	);
	const started = await call<{ call: { id: string } }>("/v1/calls", {
		token: caller.accessToken,
		body: { conversationId, media: "video" },
	});
	expect(started.status).toBe(201);
	const callId = started.body.call.id;
	await withDb((db) => db.update(calls).set({ nodeId }).where(eq(calls.id, callId)));
	return callId;
}

const join = (user: SignedIn, callId: string) =>
	call<Join & ErrorBody & { join: Join }>(`/v1/calls/${callId}/join`, { method: "POST", token: user.accessToken });

/** Urls of the nodes that may carry calls right now. */
const healthyUrls = () =>
	withDb(async (db) =>
		(await db.select().from(mediaNodes))
			.filter((n) => n.draining === 0 && n.lastHeartbeatAt.getTime() > Date.now() - 30_000)
			.map((n) => n.url),
	);

beforeAll(async () => {
	for (const id of Object.values(nodeIds)) await heartbeat(id);
});

afterEach(() => {
	vi.useRealTimers();
});

describe("a call whose media node died", () => {
	it("moves to a healthy node on the next join, and the participants are told", async () => {
		const [a, b] = [await signUp(), await signUp()];
		await heartbeat(nodeIds.dead);
		const callId = await callOn(nodeIds.dead, [a, b]);
		const alive = await join(a, callId);
		expect(alive.status).toBe(200);
		expect(alive.body.join.url, "a live node keeps its call").toBe(nodeUrl(nodeIds.dead));

		const channel = await TestSocket.open("/v1/ws", b.accessToken);
		await channel.next("ready");
		await silence(nodeIds.dead);
		const moved = await join(a, callId);
		expect(moved.status).toBe(200);
		expect(moved.body.join.url).not.toBe(nodeUrl(nodeIds.dead));
		expect(await healthyUrls()).toContain(moved.body.join.url);
		const newNode = await pinnedNode(callId);
		expect(newNode).not.toBe(nodeIds.dead);

		const frame = await channel.next("call", (f) => f.event === "moved" && f.callId === callId);
		expect(frame).toMatchObject({ userId: a.id, nodeId: newNode });
		channel.close();

		const again = await join(b, callId);
		expect(again.body.join.url, "the second participant follows, no second move").toBe(moved.body.join.url);
		expect(await pinnedNode(callId)).toBe(newNode);
	});

	it("moves off a draining node too", async () => {
		const [a, b] = [await signUp(), await signUp()];
		await heartbeat(nodeIds.draining, { draining: true });
		const callId = await callOn(nodeIds.draining, [a, b]);
		const res = await join(b, callId);
		expect(res.status).toBe(200);
		expect(res.body.join.url).not.toBe(nodeUrl(nodeIds.draining));
		expect(await pinnedNode(callId)).not.toBe(nodeIds.draining);
	});

	it("moves off a node that is not registered at all", async () => {
		const [a, b] = [await signUp(), await signUp()];
		const callId = await callOn(`fo-${run}-never-registered`, [a, b]);
		const res = await join(b, callId);
		expect(res.status).toBe(200);
		expect(await healthyUrls()).toContain(res.body.join.url);
	});

	it("participants rejoining at once all land on the same new node", async () => {
		const people = [await signUp(), await signUp(), await signUp(), await signUp()];
		await heartbeat(nodeIds.dead);
		const callId = await callOn(nodeIds.dead, people);
		await silence(nodeIds.dead);
		const joins = await Promise.all(people.map((p) => join(p, callId)));
		for (const res of joins) expect(res.status).toBe(200);
		const urls = new Set(joins.map((res) => res.body.join.url));
		expect(urls.size, [...urls].join(", ")).toBe(1);
		expect(urls.has(nodeUrl(nodeIds.dead))).toBe(false);
	});

	it("moveCall is a conditional update: the loser of a race is told where the call went", async () => {
		const [a, b] = [await signUp(), await signUp()];
		const callId = await callOn(nodeIds.dead, [a, b]);
		await withDb(async (db) => {
			expect(await moveCall(db, callId, nodeIds.dead, nodeIds.spare)).toEqual({ nodeId: nodeIds.spare, moved: true });
			// A second request that also saw the dead node and picked another one loses.
			expect(await moveCall(db, callId, nodeIds.dead, nodeIds.draining)).toEqual({
				nodeId: nodeIds.spare,
				moved: false,
			});
		});
		expect(await pinnedNode(callId)).toBe(nodeIds.spare);
	});

	it("answers 503 SERVICE_UNAVAILABLE with Retry-After when no node can take the call", async () => {
		const [a, b] = [await signUp(), await signUp()];
		const callId = await callOn(nodeIds.dead, [a, b]);
		// Ten minutes from now every node's last heartbeat is stale (the access token still holds).
		vi.useFakeTimers({ toFake: ["Date"] });
		vi.setSystemTime(Date.now() + 600_000);
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request(`http://api.test/v1/calls/${callId}/join`, {
				method: "POST",
				headers: { authorization: `Bearer ${b.accessToken}`, "cf-connecting-ip": "10.9.9.9" },
			}),
			env,
			ctx,
		);
		await waitOnExecutionContext(ctx);
		vi.useRealTimers();
		const body = (await res.json()) as ErrorBody;
		expect(res.status).toBe(503);
		expect(res.headers.get("retry-after")).toBe("5");
		expect(body.error).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
		expect(body.error.message).toMatch(/media node is down and no other media node is available/);
		expect(body.error.requestId).toBeTruthy();
		expect(await pinnedNode(callId), "nothing moved").toBe(nodeIds.dead);
	});

	it("the call over meanwhile is a 409, not a move", async () => {
		const [a, b] = [await signUp(), await signUp()];
		const callId = await callOn(nodeIds.dead, [a, b]);
		expect((await call(`/v1/calls/${callId}/end`, { method: "POST", token: a.accessToken })).status).toBe(204);
		await withDb(async (db) => {
			expect(await moveCall(db, callId, nodeIds.dead, nodeIds.spare)).toBeUndefined();
		});
		expect((await join(b, callId)).status).toBe(409);
	});

	it("a call nobody moved off a node silent for 5 minutes is ended by the cron; its participants are told", async () => {
		const [a, b] = [await signUp(), await signUp()];
		const callId = await callOn(nodeIds.gone, [a, b]);
		const fresh = await callOn(nodeIds.dead, [await signUp(), await signUp()]);
		await withDb((db) =>
			db
				.update(mediaNodes)
				.set({ lastHeartbeatAt: new Date(Date.now() - STRANDED_CALL_MS - 60_000) })
				.where(eq(mediaNodes.id, nodeIds.gone)),
		);
		await silence(nodeIds.dead);
		const channel = await TestSocket.open("/v1/ws", b.accessToken);
		await channel.next("ready");
		const ended = await withDb((db) => endStrandedCalls(env, db));
		expect(ended).toContain(callId);
		expect(ended, "two minutes of silence is not stranded yet").not.toContain(fresh);
		expect(await channel.next("call", (f) => f.event === "ended" && f.callId === callId)).toBeTruthy();
		channel.close();
		const state = await call<{ call: { state: string; participants: Array<{ state: string }> } }>(
			`/v1/calls/${callId}`,
			{ token: a.accessToken },
		);
		expect(state.body.call.state).toBe("ended");
		expect(state.body.call.participants.every((p) => p.state !== "joined")).toBe(true);
		expect((await join(b, callId)).status).toBe(409);
	});
});
