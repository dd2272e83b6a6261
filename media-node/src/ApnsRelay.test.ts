import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";

import { APNS_RELAY_PATH, ApnsRelay, parseRelayBody } from "./ApnsRelay.ts";
import { signedHeaders } from "./signing.ts";

const SECRET = "relay-secret-0123456789abcdefghijklmnop";
const TOKEN = "a1".repeat(32);
const GONE = "b2".repeat(32);

type Seen = { path: string; headers: http2.IncomingHttpHeaders; body: string; session: unknown };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A cleartext HTTP/2 (h2c) stand-in for APNs that records what arrives. */
async function fakeApns(): Promise<{ origin: string; seen: Seen[]; sessions: () => number }> {
	const seen: Seen[] = [];
	let sessions = 0;
	const server = http2.createServer();
	server.on("session", () => sessions++);
	server.on("stream", (stream, headers) => {
		const chunks: Buffer[] = [];
		stream.on("data", (c: Buffer) => chunks.push(c));
		stream.on("end", () => {
			const path = String(headers[":path"]);
			seen.push({ path, headers, body: Buffer.concat(chunks).toString("utf8"), session: stream.session });
			if (path.endsWith(GONE)) {
				stream.respond({ ":status": 410, "content-type": "application/json" });
				stream.end(JSON.stringify({ reason: "Unregistered", timestamp: Date.now() }));
			} else if (headers["apns-topic"] === "busy.app") {
				stream.respond({ ":status": 429, "retry-after": "7" });
				stream.end(JSON.stringify({ reason: "TooManyRequests" }));
			} else {
				stream.respond({ ":status": 200, "apns-id": `id-${seen.length}` });
				stream.end();
			}
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
	const { port } = server.address() as AddressInfo;
	return { origin: `http://127.0.0.1:${port}`, seen, sessions: () => sessions };
}

/** The relay mounted on a plain HTTP server, the way the media node mounts it. */
async function relayServer(relay: ApnsRelay): Promise<string> {
	const server = http.createServer((req, res) => {
		if (!relay.handle(req, res)) res.writeHead(404).end();
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	cleanups.push(() => relay.close());
	cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
	return `http://127.0.0.1:${(server.address() as AddressInfo).port}${APNS_RELAY_PATH}`;
}

function post(url: string, body: string, headers: Record<string, string> = signedHeaders("api", SECRET, body)) {
	return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

const request = (token: string, topic = "com.example.app") => ({
	path: `/3/device/${token}`,
	headers: {
		authorization: "bearer eyJ.test.jwt",
		"apns-topic": topic,
		"apns-push-type": "alert",
		"apns-priority": "10",
	},
	body: JSON.stringify({ aps: { alert: { "loc-key": "PUSH_NEW_MESSAGE" } }, kind: "message" }),
});

describe("ApnsRelay", () => {
	it("forwards signed batches over one HTTP/2 session and answers each status in order", async () => {
		const apns = await fakeApns();
		const url = await relayServer(new ApnsRelay({ secret: SECRET, origin: apns.origin }));
		const body = JSON.stringify({ requests: [request(TOKEN), request(GONE), request(TOKEN, "busy.app")] });
		const res = await post(url, body);
		expect(res.status).toBe(200);
		const { results } = (await res.json()) as { results: Array<Record<string, unknown>> };
		expect(results.map((r) => r.status)).toEqual([200, 410, 429]);
		expect(results[0]?.apnsId).toMatch(/^id-/);
		expect(JSON.parse(String(results[1]?.body)).reason).toBe("Unregistered");
		expect(results[2]?.retryAfter).toBe(7);

		const first = apns.seen.find(
			(s) => s.path === `/3/device/${TOKEN}` && s.headers["apns-topic"] === "com.example.app",
		);
		expect(first?.headers[":method"]).toBe("POST");
		expect(first?.headers.authorization).toBe("bearer eyJ.test.jwt");
		expect(first?.headers["apns-push-type"]).toBe("alert");
		expect(first?.headers["apns-priority"]).toBe("10");
		expect(JSON.parse(first?.body ?? "{}")).toMatchObject({ kind: "message" });
		// Three streams, one connection; a second batch reuses it.
		await post(url, JSON.stringify({ requests: [request(TOKEN)] }));
		expect(apns.sessions()).toBe(1);
	});

	it("refuses unsigned, mis-signed and stale requests, and answers 503 without a secret", async () => {
		const apns = await fakeApns();
		const url = await relayServer(new ApnsRelay({ secret: SECRET, origin: apns.origin }));
		const body = JSON.stringify({ requests: [request(TOKEN)] });
		expect((await post(url, body, {})).status).toBe(401);
		expect((await post(url, body, signedHeaders("api", `${SECRET}x`, body))).status).toBe(401);
		expect((await post(url, body, signedHeaders("api", SECRET, body, Date.now() - 3_600_000))).status).toBe(401);
		expect((await post(url, `${body} `, signedHeaders("api", SECRET, body))).status).toBe(401);
		expect(apns.seen).toHaveLength(0);
		const unconfigured = await relayServer(new ApnsRelay({ secret: undefined, origin: apns.origin }));
		expect((await post(unconfigured, body)).status).toBe(503);
		expect((await fetch(url)).status).toBe(405);
	});

	it("is not an open proxy: only device paths and APNs headers pass", () => {
		const ok = parseRelayBody(JSON.stringify({ requests: [request(TOKEN)] }));
		expect(Array.isArray(ok)).toBe(true);
		const cases = [
			{ ...request(TOKEN), path: "/admin" },
			{ ...request(TOKEN), path: `/3/device/${TOKEN}/../../x` },
			{ ...request(TOKEN), headers: { host: "evil.example" } },
			{ ...request(TOKEN), headers: { "apns-topic": "a\r\nx: y" } },
			{ ...request(TOKEN), body: "x".repeat(6000) },
		];
		for (const bad of cases) expect(typeof parseRelayBody(JSON.stringify({ requests: [bad] }))).toBe("string");
		expect(typeof parseRelayBody("not json")).toBe("string");
		expect(typeof parseRelayBody(JSON.stringify({ requests: [] }))).toBe("string");
	});

	it("answers status 0 for requests APNs never answered", async () => {
		const apns = await fakeApns();
		const origin = apns.origin;
		// Nothing listens there once the fake is closed.
		await cleanups.pop()?.();
		const relay = new ApnsRelay({ secret: SECRET, origin, timeoutMs: 2000 });
		const results = await relay.relay([request(TOKEN)]);
		relay.close();
		expect(results[0]?.status).toBe(0);
		expect(results[0]?.error).toBeTruthy();
	});
});
