import { afterEach, describe, expect, it } from "vitest";

import { ApiReporter } from "./ApiReporter.ts";
import { Logger } from "./Logger.ts";
import { FakeApi, TEST_SECRET, waitFor } from "./testing/fixtures.ts";

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) {
		await cleanup();
	}
});

function capture() {
	const lines: Record<string, unknown>[] = [];

	return { lines, logger: Logger.create({ level: "debug", sink: (line) => lines.push(JSON.parse(line)) }) };
}

const describeNode = () => ({
	nodeId: "node-1",
	url: "wss://media.example/v1/rtc",
	region: "local",
	capacity: 10,
	load: { calls: 0, peers: 0, consumers: 0, cpu: 0 },
});

async function reporter(queueMax = 100) {
	const api = await FakeApi.start();
	const { lines, logger } = capture();
	const created = ApiReporter.create({
		apiUrl: api.url,
		secret: TEST_SECRET,
		nodeId: "node-1",
		heartbeatMs: 60_000,
		queueMax,
		logger,
		describe: describeNode,
	});

	cleanups.push(() => api.close());
	cleanups.push(() => created.stop());

	return { api, lines, reporter: created };
}

describe("ApiReporter", () => {
	it("runs standalone (and says so) without API_URL or MEDIA_NODE_SECRET", async () => {
		const { lines, logger } = capture();
		const standalone = ApiReporter.create({
			apiUrl: "http://127.0.0.1:1",
			secret: undefined,
			nodeId: "node-1",
			heartbeatMs: 1000,
			queueMax: 10,
			logger,
			describe: describeNode,
		});

		standalone.start();
		standalone.emit("call.started", "call_1");
		expect(await standalone.heartbeat()).toBe(false);
		expect(await standalone.flush(10)).toBe(true);
		expect(standalone.stats()).toMatchObject({ enabled: false, queued: 0 });
		expect(lines).toEqual([
			expect.objectContaining({
				level: "warn",
				msg: "standalone: heartbeats and webhooks to the api are off",
				missing: ["MEDIA_NODE_SECRET"],
			}),
		]);
		standalone.stop();
	});

	it("registers with a signed heartbeat at start", async () => {
		const { api, reporter: r } = await reporter();

		r.start();

		const beat = await waitFor(() => api.heartbeats()[0], { what: "heartbeat" });

		expect(beat.signatureOk).toBe(true);
		expect(beat.body).toEqual({ ...describeNode(), draining: false });
		expect(beat.headers["content-type"]).toBe("application/json");
		expect(beat.headers["x-request-id"]).toEqual(expect.any(String));
	});

	it("retries events with back-off until the api takes them, in order", async () => {
		const { api, lines, reporter: r } = await reporter();

		api.webhookStatus = 503;
		r.emit("call.started", "call_1");
		r.emit("participant.joined", "call_1", "usr_a");
		await waitFor(() => api.received.length >= 2, { what: "two failed attempts" });
		expect(r.stats()).toMatchObject({ queued: 2, sent: 0 });
		api.webhookStatus = 204;
		expect(await r.flush(10_000)).toBe(true);
		expect(api.events().map((e) => [e.type, e.userId])).toEqual([
			["call.started", undefined],
			["participant.joined", "usr_a"],
		]);
		expect(r.stats()).toMatchObject({ queued: 0, sent: 2, failures: expect.any(Number) });
		expect(r.stats().failures).toBeGreaterThanOrEqual(2);
		expect(lines.some((l) => l.msg === "event delivery failed; will retry")).toBe(true);
		// Every attempt of the same batch carries the same event ids (the api can dedupe).
		const ids = api.received.map((req) => (req.body as { events: { id: string }[] }).events[0]?.id);

		expect(new Set(ids).size).toBe(1);
	});

	it("keeps the queue bounded, dropping the oldest waiting events with a log line", async () => {
		const { api, lines, reporter: r } = await reporter(3);

		api.webhookStatus = 503;
		for (const user of ["u1", "u2", "u3", "u4", "u5"]) {
			r.emit("participant.joined", "call_1", user);
		}
		// u1 is in flight; u2 and u3 were the oldest waiting.
		expect(r.stats()).toMatchObject({ queued: 3, dropped: 2 });
		expect(lines.filter((l) => l.msg === "event queue full, dropped oldest events")).toHaveLength(2);
		api.webhookStatus = 204;
		await r.flush(10_000);
		expect(api.events().map((e) => e.userId)).toEqual(["u1", "u4", "u5"]);
	});

	it("drops a batch the api refuses as malformed instead of blocking the queue", async () => {
		const { api, lines, reporter: r } = await reporter();

		api.webhookStatus = 422;
		r.emit("call.started", "call_1");
		await waitFor(() => r.stats().dropped === 1, { what: "dropped batch" });
		expect(lines.some((l) => l.msg === "api refused events; dropped" && l.level === "error")).toBe(true);
	});

	it("logs failing heartbeats once, not at every beat", async () => {
		const { api, lines, reporter: r } = await reporter();

		await api.close();
		expect(await r.heartbeat()).toBe(false);
		expect(await r.heartbeat()).toBe(false);
		expect(lines.filter((l) => l.msg === "heartbeat failed")).toHaveLength(1);
		expect(r.stats().heartbeatFailures).toBe(2);
	});
});
