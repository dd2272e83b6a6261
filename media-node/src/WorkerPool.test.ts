import { afterEach, describe, expect, it } from "vitest";

import { loadConfig } from "./config.ts";
import { Logger } from "./Logger.ts";
import { DEFAULT_MEDIA_CODECS, webRtcListenInfos } from "./rtc.ts";
import { WorkerPool } from "./WorkerPool.ts";

const silentLogger = Logger.create({ level: "error", sink: () => {} });
const pools: WorkerPool[] = [];

async function createPool(size: number, restartDelayMs?: number): Promise<WorkerPool> {
	const pool = await WorkerPool.create({
		size,
		logger: silentLogger,
		...(restartDelayMs === undefined ? {} : { restartDelayMs }),
	});

	pools.push(pool);

	return pool;
}

async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;

	while (!predicate()) {
		if (Date.now() > deadline) {
			throw new Error("condition not met in time");
		}
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}

afterEach(async () => {
	await Promise.all(pools.splice(0).map((pool) => pool.close()));
});

describe("WorkerPool", () => {
	it("creates a real worker, router (opus + VP8) and WebRTC transport on 127.0.0.1", async () => {
		const pool = await createPool(1);

		expect(pool.liveWorkerCount).toBe(1);

		const router = await pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		const mimeTypes = router.rtpCapabilities.codecs?.map((codec) => codec.mimeType) ?? [];

		expect(mimeTypes).toContain("audio/opus");
		expect(mimeTypes).toContain("video/VP8");

		const rtc = loadConfig({}).rtc;
		const transport = await router.createWebRtcTransport({
			listenInfos: webRtcListenInfos({ ...rtc, listenIp: "127.0.0.1", announcedAddress: "127.0.0.1" }),
		});

		expect(transport.iceParameters.usernameFragment).toMatch(/\S+/);
		expect(transport.iceParameters.password).toMatch(/\S+/);
		expect(transport.iceCandidates.length).toBeGreaterThanOrEqual(2);
		expect(new Set(transport.iceCandidates.map((c) => c.protocol))).toEqual(new Set(["udp", "tcp"]));

		for (const candidate of transport.iceCandidates) {
			expect(candidate.address).toBe("127.0.0.1");
			expect(candidate.type).toBe("host");
			expect(candidate.port).toBeGreaterThanOrEqual(rtc.minPort);
			expect(candidate.port).toBeLessThanOrEqual(rtc.maxPort);
		}

		const fingerprints = transport.dtlsParameters.fingerprints;

		expect(fingerprints.length).toBeGreaterThan(0);
		expect(fingerprints.map((f) => f.algorithm)).toContain("sha-256");
		expect(fingerprints.find((f) => f.algorithm === "sha-256")?.value).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/i);
		expect(transport.iceState).toBe("new");
		expect(transport.dtlsState).toBe("new");

		expect(pool.stats()[0]?.routers).toBe(1);
		router.close();
		expect(transport.closed).toBe(true);
		expect(pool.stats()[0]?.routers).toBe(0);
	});

	it("puts each new router on the least-loaded worker", async () => {
		const pool = await createPool(2);
		const routers = await Promise.all([
			pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS }),
			pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS }),
		]);

		expect(pool.stats().map((s) => s.routers)).toEqual([1, 1]);

		routers[0]?.close();
		const loads = pool.stats().map((s) => s.routers);
		const idle = loads.indexOf(0);

		expect(idle).not.toBe(-1);

		await pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		expect(pool.stats().map((s) => s.routers)).toEqual([1, 1]);
	});

	it("reports and replaces a worker that dies", async () => {
		const pool = await createPool(1, 20);
		const pid = pool.stats()[0]?.pid;

		if (typeof pid !== "number") {
			throw new Error("worker has no pid");
		}

		const router = await pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });

		process.kill(pid, "SIGKILL");

		await waitFor(() => router.closed);
		await waitFor(() => {
			const slot = pool.stats()[0];

			return slot?.alive === true && slot.pid !== pid;
		});

		expect(pool.stats()[0]).toMatchObject({ alive: true, deaths: 1, routers: 0 });
		expect(pool.liveWorkerCount).toBe(1);

		// The replacement takes routers.
		await pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		expect(pool.stats()[0]?.routers).toBe(1);
	});

	it("refuses a pool without workers", async () => {
		await expect(WorkerPool.create({ size: 0, logger: silentLogger })).rejects.toThrow(RangeError);
	});
});
