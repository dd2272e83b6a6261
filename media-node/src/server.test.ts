import http from "node:http";

import { afterEach, describe, expect, it } from "vitest";

import { Logger } from "./Logger.ts";
import type { HealthSource } from "./server.ts";
import { MediaNodeServer } from "./server.ts";
import { WorkerPool } from "./WorkerPool.ts";

type Started = { server: MediaNodeServer; lines: Record<string, unknown>[]; base: string };

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) {
		await cleanup();
	}
});

async function startServer(health: HealthSource): Promise<Started> {
	const lines: Record<string, unknown>[] = [];
	const logger = Logger.create({
		level: "debug",
		sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
	});
	const server = await MediaNodeServer.create({ host: "127.0.0.1", port: 0, health, logger });

	cleanups.push(() => server.close());

	return { server, lines, base: `http://127.0.0.1:${server.port}` };
}

async function waitForLog(lines: Record<string, unknown>[], msg: string): Promise<Record<string, unknown>> {
	for (let i = 0; i < 100; i++) {
		const line = lines.find((l) => l.msg === msg);

		if (line) {
			return line;
		}
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
	throw new Error(`no "${msg}" log line`);
}

describe("MediaNodeServer", () => {
	it("serves /health from a real worker pool on an ephemeral port", async () => {
		const pool = await WorkerPool.create({ size: 1, logger: Logger.create({ sink: () => {} }) });

		cleanups.push(() => pool.close());

		const { server, lines, base } = await startServer(pool);

		expect(server.port).toBeGreaterThan(0);

		const res = await fetch(`${base}/health`, { headers: { "x-request-id": "req-123" } });

		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
		expect(res.headers.get("x-request-id")).toBe("req-123");
		expect(await res.json()).toEqual({ status: "ok", workers: 1 });

		const line = await waitForLog(lines, "http request");

		expect(line).toMatchObject({
			level: "debug",
			msg: "http request",
			requestId: "req-123",
			method: "GET",
			path: "/health",
			status: 200,
		});
		expect(typeof line.time).toBe("string");
		expect(Number.isNaN(Date.parse(String(line.time)))).toBe(false);
	});

	it("answers 503 when no worker is alive", async () => {
		const { base } = await startServer({ liveWorkerCount: 0 });
		const res = await fetch(`${base}/health`);

		expect(res.status).toBe(503);
		expect(await res.json()).toEqual({ status: "unavailable", workers: 0 });
	});

	it("answers 404 and 405 as JSON, logging without requestId when none is sent", async () => {
		const { lines, base } = await startServer({ liveWorkerCount: 1 });

		const missing = await fetch(`${base}/nope`);

		expect(missing.status).toBe(404);
		expect(await missing.json()).toEqual({ error: "not_found" });

		const post = await fetch(`${base}/health`, { method: "POST" });

		expect(post.status).toBe(405);
		expect(post.headers.get("allow")).toBe("GET, HEAD");
		await post.body?.cancel();

		const line = await waitForLog(lines, "http request");

		expect(line).toMatchObject({ level: "info", path: "/nope", status: 404 });
		expect(line).not.toHaveProperty("requestId");
	});

	it("answers 503 draining, refuses upgrades of other paths, and serves /metrics when given", async () => {
		const lines: Record<string, unknown>[] = [];
		const server = await MediaNodeServer.create({
			host: "127.0.0.1",
			port: 0,
			health: { liveWorkerCount: 2, draining: true },
			logger: Logger.create({ sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
			metrics: () => "up 1\n",
			upgrade: { path: "/v1/rtc", handle: () => {} },
		});

		cleanups.push(() => server.close());

		const base = `http://127.0.0.1:${server.port}`;
		const health = await fetch(`${base}/health`);

		expect(health.status).toBe(503);
		expect(await health.json()).toEqual({ status: "draining", workers: 2 });

		const metrics = await fetch(`${base}/metrics`);

		expect(await metrics.text()).toBe("up 1\n");
		expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");

		const status = await new Promise<string>((resolve, reject) => {
			const req = http.request(`${base}/elsewhere`, {
				headers: { connection: "Upgrade", upgrade: "websocket" },
			});

			req.on("response", (res) => resolve(String(res.statusCode)));
			req.on("upgrade", () => resolve("upgraded"));
			req.on("error", reject);
			req.end();
		});

		expect(status).toBe("404");
	});

	it("fails to start on a port that is taken", async () => {
		const { server } = await startServer({ liveWorkerCount: 1 });

		await expect(
			MediaNodeServer.create({
				host: "127.0.0.1",
				port: server.port,
				health: { liveWorkerCount: 1 },
				logger: Logger.create({ sink: () => {} }),
			}),
		).rejects.toThrow(/EADDRINUSE/);
	});
});
