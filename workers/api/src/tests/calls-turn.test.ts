// TURN health from the media nodes' heartbeats: when every fresh report finds
// the TURN servers down, call start/join and GET /v1/turn/credentials answer
// STUN only with turn: "unavailable"; a later heartbeat with TURN up restores
// the relays; stale reports (or none) change nothing.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { downTurnUrls, iceServersFor } from "../calls/turn.ts";
import { calls, mediaNodes } from "../db/schema/index.ts";
import worker from "../index.ts";
import { randomIp, signUp, unique, withDb } from "./helpers.ts";
import { nodeHeartbeat } from "./media-nodes.ts";
import { createGroup } from "./sockets.ts";

type IceServer = { urls: string | string[]; username?: string; credential?: string };
type Join = { url: string; token: string; iceServers: IceServer[]; turn: string };

const run = unique();
// Host names of this file only: other files' reports and TURN_URLS never match them.
const STUN = `stun:turn-${run}.test:3478`;
const UDP = `turn:turn-${run}.test:3478?transport=udp`;
const TCP = `turn:turn-${run}.test:3478?transport=tcp`;
const turnEnv = {
	...env,
	TURN_URLS: [STUN, UDP, TCP].join(","),
	// Calls need a media node; the static fallback serves when no node beats.
	MEDIA_NODE_URL: `http://media-${run}.test:8790`,
};
const prober = `turn-probe-${run}`;

/** A heartbeat from a node that probes TURN. Capacity 0: it is never picked for calls, here or in other files. */
async function heartbeat(servers: Array<{ url: string; up: boolean; reason?: string }> | undefined, nodeId = prober) {
	const res = await nodeHeartbeat({
		nodeId,
		url: `ws://${nodeId}.test:8790/v1/rtc`,
		region: "local",
		capacity: 0,
		load: { calls: 0, peers: 0 },
		draining: false,
		...(servers && { turn: { servers: servers.map((s) => ({ ...s, checkedAt: new Date().toISOString() })) } }),
	});
	expect(res.status).toBe(204);
}

/** A request to the api with TURN configured (TURN_URLS above). */
async function api<T>(
	path: string,
	token: string,
	method = "GET",
	body?: unknown,
): Promise<{ status: number; body: T }> {
	const ctx = createExecutionContext();
	const res = await worker.fetch(
		new Request(`http://api.test${path}`, {
			method,
			headers: {
				authorization: `Bearer ${token}`,
				"cf-connecting-ip": randomIp(),
				...(body !== undefined && { "content-type": "application/json" }),
			},
			...(body !== undefined && { body: JSON.stringify(body) }),
		}),
		turnEnv,
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return { status: res.status, body: (await res.json()) as T };
}

const relayOf = (ice: IceServer[]) => ice.find((s) => s.username !== undefined);

describe("TURN health from media node heartbeats", () => {
	it("a heartbeat with TURN down makes the join answer STUN only, 'unavailable'; TURN up restores it", async () => {
		const a = await signUp();
		const b = await signUp();
		const conversationId = await createGroup(a.accessToken, [b.id]);

		// Before any report: today's behaviour, TURN offered.
		const before = await api<{ turn: string; iceServers: IceServer[] }>("/v1/turn/credentials", a.accessToken);
		expect(before.status).toBe(200);
		expect(before.body.turn).toBe("ok");
		expect(relayOf(before.body.iceServers)?.urls).toEqual([UDP, TCP]);
		// The entry with credentials comes first, in the shape the contract shows.
		expect(before.body.iceServers[0]).toMatchObject({ urls: [UDP, TCP], username: expect.any(String) });
		expect(before.body.iceServers[0]?.credential).toEqual(expect.any(String));
		for (const server of before.body.iceServers)
			expect(Object.keys(server).sort()).toEqual(["credential", "urls", "username"]);

		await heartbeat([
			{ url: UDP, up: false, reason: "timeout" },
			{ url: TCP, up: false, reason: "refused" },
		]);

		const started = await api<{ call: { id: string }; join: Join }>("/v1/calls", a.accessToken, "POST", {
			conversationId,
			media: "audio",
		});
		expect(started.status).toBe(201);
		expect(started.body.join.turn).toBe("unavailable");
		expect(started.body.join.iceServers).toEqual([{ urls: [STUN] }]);
		// Pinned to the static node (MEDIA_NODE_URL, taken on trust), so other files' nodes going stale never move it.
		await withDb((db) => db.update(calls).set({ nodeId: "static" }).where(eq(calls.id, started.body.call.id)));

		const joined = await api<{ join: Join }>(`/v1/calls/${started.body.call.id}/join`, b.accessToken, "POST");
		expect(joined.status).toBe(200);
		expect(joined.body.join.turn).toBe("unavailable");
		expect(joined.body.join.iceServers).toEqual([{ urls: [STUN] }]);
		expect(relayOf(joined.body.join.iceServers)).toBeUndefined();

		const credentials = await api<{ turn: string; iceServers: IceServer[]; ttl: number }>(
			"/v1/turn/credentials",
			b.accessToken,
		);
		expect(credentials.body).toMatchObject({ turn: "unavailable", iceServers: [{ urls: [STUN] }] });

		// Only UDP comes back: the TCP relay stays out, TURN is "ok" again.
		await heartbeat([
			{ url: UDP, up: true },
			{ url: TCP, up: false, reason: "refused" },
		]);
		const partial = await api<{ join: Join }>(`/v1/calls/${started.body.call.id}/join`, b.accessToken, "POST");
		expect(partial.body.join.turn).toBe("ok");
		expect(relayOf(partial.body.join.iceServers)?.urls).toEqual([UDP]);

		// Everything up: both relays, with credentials.
		await heartbeat([
			{ url: UDP, up: true },
			{ url: TCP, up: true },
		]);
		const restored = await api<{ join: Join }>(`/v1/calls/${started.body.call.id}/join`, b.accessToken, "POST");
		expect(restored.status).toBe(200);
		expect(restored.body.join.turn).toBe("ok");
		const relay = relayOf(restored.body.join.iceServers);
		expect(relay?.urls).toEqual([UDP, TCP]);
		expect(relay?.username).toMatch(new RegExp(`^\\d+:${b.id}$`));
		expect(relay?.credential).toBeTruthy();
		expect((await api<{ turn: string }>("/v1/turn/credentials", a.accessToken)).body.turn).toBe("ok");
	});

	it("one node that reaches TURN is enough; stale reports and nodes that stop reporting count for nothing", async () => {
		const a = await signUp();
		const other = `${prober}-b`;

		await heartbeat([{ url: UDP, up: false, reason: "timeout" }]);
		await heartbeat([{ url: TCP, up: false, reason: "timeout" }], other);
		expect((await api<{ turn: string }>("/v1/turn/credentials", a.accessToken)).body.turn).toBe("unavailable");

		await heartbeat(
			[
				{ url: UDP, up: true },
				{ url: TCP, up: true },
			],
			other,
		);
		const mixed = await api<{ turn: string; iceServers: IceServer[] }>("/v1/turn/credentials", a.accessToken);
		expect(mixed.body.turn).toBe("ok");
		expect(relayOf(mixed.body.iceServers)?.urls).toEqual([UDP, TCP]);

		// Both say down, then their heartbeats go stale: back to offering TURN.
		await heartbeat([{ url: TCP, up: false, reason: "timeout" }], other);
		await heartbeat([
			{ url: UDP, up: false, reason: "timeout" },
			{ url: TCP, up: false, reason: "timeout" },
		]);
		expect((await api<{ turn: string }>("/v1/turn/credentials", a.accessToken)).body.turn).toBe("unavailable");
		await withDb((db) =>
			db
				.update(mediaNodes)
				.set({ lastHeartbeatAt: new Date(Date.now() - 120_000) })
				.where(eq(mediaNodes.id, prober)),
		);
		// The other node still says TCP is down, and nobody speaks for UDP.
		const stale = await api<{ turn: string; iceServers: IceServer[] }>("/v1/turn/credentials", a.accessToken);
		expect(stale.body.turn).toBe("ok");
		expect(relayOf(stale.body.iceServers)?.urls).toEqual([UDP]);

		// A heartbeat without `turn` (probe off, or an older node) clears that node's report.
		await heartbeat(undefined, other);
		const cleared = await api<{ turn: string; iceServers: IceServer[] }>("/v1/turn/credentials", a.accessToken);
		expect(cleared.body.turn).toBe("ok");
		expect(relayOf(cleared.body.iceServers)?.urls).toEqual([UDP, TCP]);
	});

	it("refuses a heartbeat whose TURN report is malformed", async () => {
		const res = await nodeHeartbeat({
			nodeId: `${prober}-bad`,
			url: "ws://bad.test:8790/v1/rtc",
			region: "local",
			capacity: 0,
			load: { calls: 0, peers: 0 },
			draining: false,
			turn: { servers: [{ url: UDP, up: "yes" }] },
		});
		expect(res.status).toBe(400);
	});
});

describe("iceServersFor with TURN reports", () => {
	const config = { urls: [STUN, UDP, TCP], secret: "s".repeat(40), ttlSeconds: 600 };
	const at = (servers: Array<{ url: string; up: boolean }>) => ({
		servers: servers.map((s) => ({ ...s, checkedAt: new Date(0).toISOString() })),
	});

	it("matches URLs by server and transport, whatever the spelling", () => {
		const host = `turn:TURN-${run}.test`;
		expect(downTurnUrls([UDP, TCP], [at([{ url: host, up: false }])])).toEqual(new Set([UDP]));
		expect(downTurnUrls([UDP, TCP], [at([{ url: `${host}:3478?transport=tcp`, up: false }])])).toEqual(new Set([TCP]));
		expect(downTurnUrls([UDP], [at([{ url: "turn:elsewhere.test", up: false }])])).toEqual(new Set());
	});

	it("says not_configured without a secret, whatever the reports", async () => {
		const down = [
			at([
				{ url: UDP, up: false },
				{ url: TCP, up: false },
			]),
		];
		expect((await iceServersFor({ ...config, secret: undefined }, "u", { reports: down })).turn).toBe("not_configured");
		expect(await iceServersFor(config, "u", { reports: down })).toEqual({
			iceServers: [{ urls: [STUN] }],
			ttl: 600,
			turn: "unavailable",
		});
		expect(await iceServersFor({ ...config, urls: [UDP] }, "u", { reports: down })).toEqual({
			iceServers: [],
			ttl: 600,
			turn: "unavailable",
		});
	});
});
