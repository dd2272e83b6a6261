import {
	createExecutionContext,
	createMessageBatch,
	env,
	getQueueResult,
	waitOnExecutionContext,
} from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../index.ts";
import { recordQueueJob, recordRequest, statusClass, writeMetric } from "../lib/metrics.ts";
import type { NotificationJob } from "../notifications/consumer.ts";
import { signUp, unique } from "./helpers.ts";
import { b64, createGroup, TestSocket } from "./sockets.ts";

class FakeDataset implements AnalyticsEngineDataset {
	readonly points: AnalyticsEngineDataPoint[] = [];
	writeDataPoint(point?: AnalyticsEngineDataPoint): void {
		if (point) this.points.push(point);
	}
}

async function fetchWith(path: string, bindings: Partial<typeof env>, init: RequestInit = {}) {
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request(`http://api.test${path}`, init), { ...env, ...bindings }, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("metrics module", () => {
	it("writes one data point in the documented layout", () => {
		const dataset = new FakeDataset();
		recordRequest(
			{ METRICS: dataset, ENVIRONMENT: "staging" },
			{ route: "/v1/x/:id", method: "GET", status: 503, durationMs: 12 },
		);
		recordQueueJob({ METRICS: dataset }, { kind: "email", outcome: "dead_letter", attempts: 6 });
		expect(dataset.points).toEqual([
			{
				indexes: ["request:/v1/x/:id"],
				blobs: ["request", "/v1/x/:id", "GET", "5xx", "staging"],
				doubles: [12, 1, 503],
			},
			{ indexes: ["queue:email"], blobs: ["queue", "email", "", "dead_letter", "dev"], doubles: [6, 1, 0] },
		]);
	});

	it("is a no-op without a binding and never throws, whatever the binding does", () => {
		expect(() => writeMetric(undefined, { event: "message", name: "message" })).not.toThrow();
		expect(() => writeMetric({}, { event: "message", name: "message" })).not.toThrow();
		const broken = {
			writeDataPoint: () => {
				throw new Error("dataset unavailable");
			},
		};
		expect(() => writeMetric({ METRICS: broken }, { event: "message", name: "message" })).not.toThrow();
	});

	it("keeps the sampling index within Analytics Engine's 96 bytes and numbers finite", () => {
		const dataset = new FakeDataset();
		writeMetric({ METRICS: dataset }, { event: "request", name: `/${"é".repeat(200)}`, value: Number.NaN });
		const [point] = dataset.points;
		expect(new TextEncoder().encode(String(point?.indexes?.[0])).length).toBeLessThanOrEqual(96);
		expect(point?.doubles).toEqual([0, 1, 0]);
	});

	it("names status classes", () => {
		expect([200, 201, 302, 404, 429, 500, 503, 99].map(statusClass)).toEqual([
			"2xx",
			"2xx",
			"3xx",
			"4xx",
			"4xx",
			"5xx",
			"5xx",
			"other",
		]);
	});
});

describe("metrics from the worker", () => {
	it("records each request by route pattern (never the raw URL), method, status class and latency", async () => {
		const dataset = new FakeDataset();
		expect((await fetchWith("/health", { METRICS: dataset })).status).toBe(200);
		expect((await fetchWith("/v1/users/usr_secretlookingid?token=abc", { METRICS: dataset })).status).toBe(401);
		const requests = dataset.points.filter((p) => p.blobs?.[0] === "request");
		expect(requests.map((p) => p.blobs?.slice(1, 5))).toEqual([
			["/health", "GET", "2xx", "test"],
			["/v1/users/:id", "GET", "4xx", "test"],
		]);
		for (const p of requests) {
			expect(p.doubles?.[0]).toBeGreaterThanOrEqual(0);
			expect(p.doubles?.[1]).toBe(1);
		}
		expect(JSON.stringify(dataset.points)).not.toContain("usr_secretlookingid");
		expect(JSON.stringify(dataset.points)).not.toContain("token=abc");
	});

	it("a dataset that throws never fails a request", async () => {
		const broken = {
			writeDataPoint: () => {
				throw new Error("dataset unavailable");
			},
		};
		expect((await fetchWith("/health", { METRICS: broken })).status).toBe(200);
	});

	it("Durable Objects record sockets and stored messages (bytes, never content)", async () => {
		const binding = env.METRICS;
		if (!binding) throw new Error("wrangler.toml binds METRICS");
		const points: AnalyticsEngineDataPoint[] = [];
		// The objects' env shares this binding object, so a spy sees their writes too.
		vi.spyOn(binding, "writeDataPoint").mockImplementation((p) => {
			if (p) points.push(p);
		});
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		await ws.next("ready");
		const ciphertext = b64("metrics are never content");
		ws.send({ type: "send", clientId: "m1", ciphertext });
		await ws.next("ack");
		ws.close();
		expect(points).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ blobs: ["socket", "ChatRoom", "open", "", "test"] }),
				expect.objectContaining({ blobs: ["message", "message", "", "", "test"], doubles: [25, 1, 0] }),
				expect.objectContaining({ blobs: ["request", "/v1/conversations/:id/ws", "GET", "1xx", "test"] }),
			]),
		);
		expect(JSON.stringify(points)).not.toContain(ciphertext);
	});

	it("the queue consumer records each notification job's outcome", async () => {
		const dataset = new FakeDataset();
		const user = await signUp();
		const batch = createMessageBatch<NotificationJob>("secureconnect-notifications-dev", [
			{
				id: `m-${unique()}`,
				timestamp: new Date(),
				attempts: 1,
				body: { kind: "push", userId: user.id, conversationId: "cnv_aaaaaaaaaaaaaaaaaaaa", seq: 1, requestId: "r-1" },
			},
		]);
		const ctx = createExecutionContext();
		await worker.queue(batch, { ...env, METRICS: dataset });
		expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
		expect(dataset.points).toEqual([
			{ indexes: ["queue:push"], blobs: ["queue", "push", "", "delivered", "test"], doubles: [1, 1, 0] },
		]);
	});
});
