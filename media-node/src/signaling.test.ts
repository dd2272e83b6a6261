// The media node over its real sockets, with a fake api (JWKS + webhooks):
// admission by call token, refusals, participant limit, reconnects, /metrics,
// signed heartbeats and events, the api's end-call request, graceful drain.
// Media itself flows in media.test.ts.

import { describe, expect, it } from "vitest";

import { RTC_CLOSE_CODES } from "../../protocol/src/signaling.ts";
import { signedHeaders } from "./signing.ts";
import {
	callToken,
	SignalingClient,
	signingKey,
	TEST_NODE_ID,
	TEST_SECRET,
	type TestNode,
	type TokenInput,
	waitFor,
} from "./testing/fixtures.ts";
import { nodeHarness } from "./testing/harness.ts";

const CALL = "call_aaaaaaaaaaaaaaaa";

const harness = nodeHarness();
const { node } = harness;

function token(userId: string, overrides: Partial<TokenInput> = {}): Promise<string> {
	return callToken({ key: harness.key, issuer: harness.api.url, userId, callId: CALL, ...overrides });
}

async function connect(
	target: TestNode,
	userId: string,
	overrides: Partial<TokenInput> = {},
	auth: "subprotocol" | "frame" = "subprotocol",
): Promise<SignalingClient> {
	const client = await SignalingClient.open(target.url, await token(userId, overrides), { auth });

	harness.defer(() => client.close());
	await client.notification("ready");

	return client;
}

async function joined(target: TestNode, userId: string, overrides: Partial<TokenInput> = {}) {
	const client = await connect(target, userId, overrides);
	const { rtpCapabilities } = await client.request("getRouterRtpCapabilities", {});
	const join = await client.request("join", { rtpCapabilities, displayName: `User ${userId}` });

	return { client, join, rtpCapabilities };
}

async function metrics(target: TestNode): Promise<string> {
	const res = await fetch(`${target.httpUrl}/metrics`);

	expect(res.status).toBe(200);
	expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");

	return await res.text();
}

function metricValue(text: string, name: string): number | undefined {
	const line = text.split("\n").find((l) => l.startsWith(`${name} `));

	return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("admission", () => {
	it("admits a valid call token sent as bearer subprotocol, selecting secureconnect.v1", async () => {
		const target = await node();
		const raw = await token("usr_alice");
		const client = await SignalingClient.open(target.url, raw);

		harness.defer(() => client.close());
		expect(client.ws.protocol).toBe("secureconnect.v1");

		const ready = await client.notification("ready");

		expect(ready).toEqual({
			peerId: "usr_alice",
			callId: CALL,
			nodeId: TEST_NODE_ID,
			permissions: ["publish", "subscribe", "screen"],
		});

		const { rtpCapabilities } = await client.request("getRouterRtpCapabilities", {});

		expect(rtpCapabilities.codecs?.map((c) => c.mimeType)).toEqual(
			expect.arrayContaining(["audio/opus", "video/VP8", "video/H264"]),
		);

		const join = await client.request("join", { rtpCapabilities, displayName: "Alice" });

		expect(join).toEqual({ peerId: "usr_alice", peers: [], resumed: false, transports: [], producers: [] });

		// The api's request id (claim rid) follows the socket into the logs.
		const traced = await SignalingClient.open(target.url, await token("usr_dave", { extra: { rid: "req-from-api" } }));

		harness.defer(() => traced.close());
		await traced.notification("ready");
		expect(target.logs.find((l) => l.msg === "socket admitted" && l.userId === "usr_dave")).toMatchObject({
			requestId: "req-from-api",
		});

		// Never a token in the logs.
		expect(target.rawLogs.join("")).not.toContain(raw);
		expect(target.logs.find((l) => l.msg === "socket admitted")).toMatchObject({
			callId: CALL,
			userId: "usr_alice",
			requestId: expect.any(String),
		});
	});

	it("echoes the bearer protocol when secureconnect.v1 is not offered, and accepts an auth frame", async () => {
		const target = await node();
		const raw = await token("usr_bob");
		const echo = await SignalingClient.open(target.url, raw, { protocols: [`bearer.${raw}`] });

		harness.defer(() => echo.close());
		expect(echo.ws.protocol).toBe(`bearer.${raw}`);
		await echo.notification("ready");

		const framed = await SignalingClient.open(target.url, await token("usr_carol"), { auth: "frame" });

		harness.defer(() => framed.close());
		expect(await framed.notification("ready")).toMatchObject({ peerId: "usr_carol" });
	});

	it.each<[string, () => Promise<string>, string, RegExp]>([
		["a wrong audience", () => token("usr_x", { audience: "secureconnect-api" }), "INVALID_TOKEN", /audience/],
		["an expired token", () => token("usr_x", { iat: -200, ttl: 60 }), "TOKEN_EXPIRED", /expired/],
		[
			"a token signed by an unknown key",
			async () => token("usr_x", { key: await signingKey("kid-unknown") }),
			"INVALID_TOKEN",
			/unknown key/,
		],
		["a lifetime over 120 s", () => token("usr_x", { ttl: 121 }), "INVALID_TOKEN", /lifetime/],
		["a wrong issuer", () => token("usr_x", { issuer: "https://evil.example" }), "INVALID_TOKEN", /issued/],
		["malformed claims", () => token("usr_x", { perm: ["admin"] }), "INVALID_TOKEN", /claims/],
		["garbage", async () => "not-a-jwt-at-all", "INVALID_TOKEN", /not valid/],
	])("refuses %s with an error frame and close 4001", async (_name, make, code, message) => {
		const target = await node();
		const raw = await make();

		for (const auth of ["subprotocol", "frame"] as const) {
			const client = await SignalingClient.open(target.url, raw, { auth });
			const closed = await client.closed;

			expect(client.errorFrame()).toEqual({ type: "error", code, message: expect.stringMatching(message) });
			expect(closed).toEqual({ code: RTC_CLOSE_CODES.UNAUTHORIZED, reason: code });
			expect(client.notifications("ready")).toEqual([]);
		}
		expect(target.rawLogs.join("")).not.toContain(raw);

		const text = await metrics(target);

		expect(text).toContain(`secureconnect_media_sockets_refused_total{code="${code}"} 2`);
	});

	it("refuses requests before authentication", async () => {
		const target = await node();
		const client = await SignalingClient.open(target.url, undefined, { auth: "none" });

		client.ws.send(JSON.stringify({ type: "request", id: 1, method: "join", data: {} }));

		expect(await client.closed).toEqual({ code: RTC_CLOSE_CODES.UNAUTHORIZED, reason: "UNAUTHORIZED" });
		expect(client.errorFrame()?.code).toBe("UNAUTHORIZED");
	});

	it("fails closed when the api's key set cannot be fetched", async () => {
		const target = await node({ MEDIA_JWKS_URL: "http://127.0.0.1:1/.well-known/jwks.json" });
		const client = await SignalingClient.open(target.url, await token("usr_x"));

		expect(await client.closed).toEqual({ code: RTC_CLOSE_CODES.TRY_AGAIN_LATER, reason: "SERVICE_UNAVAILABLE" });
	});
});

describe("requests", () => {
	it("validates methods, data, order and permissions", async () => {
		const target = await node();
		const client = await connect(target, "usr_alice", { perm: ["subscribe"] });

		await expect(client.request("leave" as never, {})).resolves.toEqual({});
		await client.closed;

		const again = await connect(target, "usr_alice", { perm: ["subscribe"] });

		await expect(again.request("createWebRtcTransport", { direction: "recv" })).rejects.toMatchObject({
			code: "NOT_JOINED",
		});
		await expect(again.request("nope" as never, {})).rejects.toMatchObject({ code: "BAD_REQUEST" });

		const { rtpCapabilities } = await again.request("getRouterRtpCapabilities", {});

		await expect(again.request("join", { rtpCapabilities: "x" } as never)).rejects.toMatchObject({
			code: "BAD_REQUEST",
		});
		await again.request("join", { rtpCapabilities });
		await expect(again.request("join", { rtpCapabilities })).rejects.toMatchObject({ code: "CONFLICT" });
		await expect(again.request("createWebRtcTransport", { direction: "send" })).rejects.toMatchObject({
			code: "FORBIDDEN",
		});

		const recv = await again.request("createWebRtcTransport", { direction: "recv" });

		expect(recv.iceCandidates.map((c) => c.protocol).sort()).toEqual(["tcp", "udp"]);
		expect(recv.dtlsParameters.fingerprints.length).toBeGreaterThan(0);
		await expect(again.request("restartIce", { transportId: recv.id })).resolves.toMatchObject({
			iceParameters: { usernameFragment: expect.any(String) },
		});
		await expect(again.request("closeProducer", { producerId: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });

		// A malformed frame after authentication is an error frame, not a disconnect.
		again.ws.send("{not json");
		await waitFor(() => again.errorFrame(), { what: "error frame" });
		await expect(again.request("getRouterRtpCapabilities", {})).resolves.toHaveProperty("rtpCapabilities");
	});

	it("puts every transport of a worker on its WebRtcServer's two ports", async () => {
		const target = await node();
		const { client } = await joined(target, "usr_alice");
		const a = await client.request("createWebRtcTransport", { direction: "send" });
		const b = await client.request("createWebRtcTransport", { direction: "recv" });
		const ports = target.node.pool.stats()[0]?.ports;

		expect(ports?.udp).toBeGreaterThan(0);
		for (const transport of [a, b]) {
			expect(transport.iceCandidates.find((c) => c.protocol === "udp")?.port).toBe(ports?.udp);
			expect(transport.iceCandidates.find((c) => c.protocol === "tcp")?.port).toBe(ports?.tcp);
		}
	});
});

describe("participants", () => {
	it("announces peers, limits the call (CALL_FULL) and lets a member reconnect even when full", async () => {
		const target = await node({ MEDIA_MAX_PEERS_PER_CALL: "2" });
		const alice = await joined(target, "usr_alice");
		const bob = await joined(target, "usr_bob");

		expect(bob.join.peers).toEqual([
			{ id: "usr_alice", displayName: "User usr_alice", connected: true, producers: [] },
		]);
		expect((await alice.client.notification("peerJoined")).peer).toMatchObject({ id: "usr_bob" });

		const carol = await SignalingClient.open(target.url, await token("usr_carol"));

		expect(await carol.closed).toEqual({ code: RTC_CLOSE_CODES.CALL_FULL, reason: "CALL_FULL" });
		expect(carol.errorFrame()).toEqual({
			type: "error",
			code: "CALL_FULL",
			message: "This call already has its maximum of 2 participants.",
		});

		// Another call on the same node is not affected.
		const other = await connect(target, "usr_carol", { callId: "call_bbbbbbbbbbbbbbbb" });

		expect(await other.notification("ready")).toMatchObject({ callId: "call_bbbbbbbbbbbbbbbb" });

		// Bob again, with a new token: replaces his first socket.
		const bob2 = await connect(target, "usr_bob");

		expect(await bob.client.closed).toEqual({ code: RTC_CLOSE_CODES.REPLACED, reason: "REPLACED" });
		expect(bob.client.errorFrame()?.code).toBe("REPLACED");

		const rejoin = await bob2.request("join", { rtpCapabilities: bob.rtpCapabilities });

		expect(rejoin.resumed).toBe(true);
		expect(alice.client.notifications("peerLeft")).toEqual([]);
		expect(alice.client.notifications("peerJoined")).toHaveLength(1);
	});

	it("keeps a dropped peer's place for the reconnect grace, then removes it", async () => {
		const target = await node({ MEDIA_RECONNECT_GRACE_MS: "400" });
		const alice = await joined(target, "usr_alice");
		const bob = await joined(target, "usr_bob");

		await bob.client.request("createWebRtcTransport", { direction: "recv" });
		bob.client.ws.terminate();
		await bob.client.closed;

		// Within the grace: still a member; a new socket resumes with its transport.
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect(alice.client.notifications("peerLeft")).toEqual([]);

		const bob2 = await connect(target, "usr_bob");
		const rejoin = await bob2.request("join", { rtpCapabilities: bob.rtpCapabilities });

		expect(rejoin).toMatchObject({ resumed: true, transports: [{ direction: "recv" }] });
		await new Promise((resolve) => setTimeout(resolve, 600));
		expect(alice.client.notifications("peerLeft")).toEqual([]);

		// Gone for longer than the grace: removed.
		bob2.ws.terminate();
		expect(await alice.client.notification("peerLeft", undefined, 3_000)).toEqual({ peerId: "usr_bob" });
		expect(target.node.rooms.counts().peers).toBe(1);
	});

	it("closes the call when its last peer leaves, reporting signed events to the api", async () => {
		const target = await node();
		const alice = await joined(target, "usr_alice", { deviceId: "dev_aaaaaaaaaaaa" });
		const bob = await joined(target, "usr_bob");

		expect(bob.join.peers[0]).toMatchObject({ id: "usr_alice", deviceId: "dev_aaaaaaaaaaaa" });
		await alice.client.request("leave", {});
		expect(await alice.client.closed).toEqual({ code: 1000, reason: "left" });
		expect(await bob.client.notification("peerLeft")).toEqual({ peerId: "usr_alice" });
		await bob.client.request("leave", {});
		await waitFor(() => target.node.rooms.size === 0, { what: "room closed" });

		const events = await waitFor(() => (harness.api.events().length >= 6 ? harness.api.events() : undefined), {
			what: "6 events",
		});

		expect(events.map((e) => [e.type, e.userId])).toEqual([
			["call.started", undefined],
			["participant.joined", "usr_alice"],
			["participant.joined", "usr_bob"],
			["participant.left", "usr_alice"],
			["participant.left", "usr_bob"],
			["call.ended", undefined],
		]);

		for (const event of harness.api.events()) {
			expect(event).toMatchObject({ id: expect.any(String), callId: CALL, at: expect.any(String) });
			expect(Number.isNaN(Date.parse(event.at))).toBe(false);
		}

		const requests = harness.api.received.filter((r) => r.path === "/internal/media-nodes/events");

		for (const request of requests) {
			expect(request.signatureOk).toBe(true);
			expect(request.headers["x-sc-node-id"]).toBe(TEST_NODE_ID);
			expect(request.body).toMatchObject({ nodeId: TEST_NODE_ID });
		}
	});
});

describe("operations", () => {
	it("sends signed heartbeats describing the node's load", async () => {
		const target = await node({ MEDIA_HEARTBEAT_MS: "200", MEDIA_REGION: "eu-test", MEDIA_MAX_PEERS: "50" });

		await joined(target, "usr_alice");

		const beat = await waitFor(
			() =>
				harness.api.heartbeats().find((h) => (h.body as { load: { peers: number } }).load.peers === 1 && h.signatureOk),
			{ what: "heartbeat with one peer" },
		);

		expect(beat.body).toEqual({
			nodeId: TEST_NODE_ID,
			url: target.url,
			region: "eu-test",
			capacity: 50,
			load: { calls: 1, peers: 1, consumers: 0, cpu: expect.any(Number) },
			draining: false,
		});
		expect(beat.headers["x-sc-signature"]).toMatch(/^v1=[0-9a-f]{64}$/);
		expect(beat.headers["x-sc-timestamp"]).toMatch(/^\d+$/);
	});

	it("exposes workers, calls, peers, transports and bitrates on /metrics", async () => {
		const target = await node();
		const { client } = await joined(target, "usr_alice");

		await client.request("createWebRtcTransport", { direction: "send" });
		await joined(target, "usr_bob");

		const text = await metrics(target);

		expect(metricValue(text, "secureconnect_media_workers_alive")).toBe(1);
		expect(metricValue(text, "secureconnect_media_calls")).toBe(1);
		expect(metricValue(text, "secureconnect_media_peers")).toBe(2);
		expect(metricValue(text, "secureconnect_media_transports")).toBe(1);
		expect(metricValue(text, "secureconnect_media_producers")).toBe(0);
		expect(metricValue(text, "secureconnect_media_consumers")).toBe(0);
		expect(metricValue(text, "secureconnect_media_recv_bitrate_bps")).toBeGreaterThanOrEqual(0);
		expect(metricValue(text, "secureconnect_media_send_bitrate_bps")).toBeGreaterThanOrEqual(0);
		expect(metricValue(text, "secureconnect_media_sockets")).toBe(2);
		expect(metricValue(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
		expect(metricValue(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
		expect(text).toContain('secureconnect_media_worker_routers{worker="0"} 1');

		// Well-formed exposition: every line is a comment or `name{labels} value`.
		for (const line of text.trimEnd().split("\n")) {
			expect(line).toMatch(
				/^(# (HELP|TYPE) [a-z_][a-z0-9_]* .+|[a-z_][a-z0-9_]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+)$/,
			);
		}
	});

	it("ends a call when the api asks with a signed request", async () => {
		const target = await node();
		const alice = await joined(target, "usr_alice");
		const path = `/internal/calls/${CALL}/end`;

		const unsigned = await fetch(`${target.httpUrl}${path}`, { method: "POST", body: "{}" });

		expect(unsigned.status).toBe(401);

		const body = "{}";
		const ended = await fetch(`${target.httpUrl}${path}`, {
			method: "POST",
			body,
			headers: signedHeaders(TEST_NODE_ID, TEST_SECRET, body),
		});

		expect(ended.status).toBe(204);
		expect(await alice.client.notification("callEnded")).toEqual({ reason: "ended" });
		expect(await alice.client.closed).toMatchObject({ code: RTC_CLOSE_CODES.CALL_ENDED });

		const again = await fetch(`${target.httpUrl}${path}`, {
			method: "POST",
			body,
			headers: signedHeaders(TEST_NODE_ID, TEST_SECRET, body),
		});

		expect(again.status).toBe(404);

		// A token minted before the end is still valid for a while: it must not open the call again.
		const late = await SignalingClient.open(target.url, await token("usr_bob"));

		harness.defer(() => late.close());
		expect(await late.closed).toEqual({ code: RTC_CLOSE_CODES.CALL_ENDED, reason: "NOT_FOUND" });
		expect(late.errorFrame()?.message).toBe("This call has ended.");
		expect(late.frames.some((f) => f.type === "notification" && f.method === "ready")).toBe(false);
	});

	it("drains gracefully: peers told, api told, no new sockets, exits when calls end", async () => {
		const target = await node({ MEDIA_DRAIN_TIMEOUT_MS: "5000" });
		const alice = await joined(target, "usr_alice");
		const bob = await joined(target, "usr_bob");
		const drained = target.node.drain();

		const notice = await alice.client.notification("nodeDraining");

		expect(notice.timeoutMs).toBe(5000);
		expect(Date.parse(notice.deadline)).toBeGreaterThan(Date.now());
		await bob.client.notification("nodeDraining");

		const beat = await waitFor(() => harness.api.heartbeats().find((h) => (h.body as { draining: boolean }).draining), {
			what: "draining heartbeat",
		});

		expect(beat.signatureOk).toBe(true);
		expect((await fetch(`${target.httpUrl}/health`)).status).toBe(503);

		const late = await SignalingClient.open(target.url, await token("usr_carol"));

		expect(await late.closed).toEqual({ code: RTC_CLOSE_CODES.TRY_AGAIN_LATER, reason: "DRAINING" });

		await alice.client.request("leave", {});
		await bob.client.request("leave", {});
		await drained;

		expect(harness.api.events().map((e) => e.type)).toContain("call.ended");
		expect(target.node.pool.closed).toBe(true);
	});

	it("ends the calls still running when the drain timeout passes", async () => {
		const target = await node({ MEDIA_DRAIN_TIMEOUT_MS: "300" });
		const alice = await joined(target, "usr_alice");

		await target.node.drain();

		expect(alice.client.notifications("nodeDraining")).toHaveLength(1);
		expect(await alice.client.notification("callEnded")).toEqual({ reason: "node-shutdown" });
		expect(await alice.client.closed).toMatchObject({ code: RTC_CLOSE_CODES.GOING_AWAY });
		expect(harness.api.events().map((e) => e.type)).toEqual([
			"call.started",
			"participant.joined",
			"participant.left",
			"call.ended",
		]);
	});
});
