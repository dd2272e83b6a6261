import net from "node:net";

import { afterEach, describe, expect, it } from "vitest";

import { loadConfig } from "./config.ts";
import { Logger } from "./Logger.ts";
import { DEFAULT_MEDIA_CODECS, webRtcListenInfos, webRtcServerListenInfos } from "./rtc.ts";
import { NoLiveWorkerError, WorkerPool } from "./WorkerPool.ts";

const silentLogger = Logger.create({ level: "error", sink: () => {} });
const pools: WorkerPool[] = [];

async function createPool(
	size: number,
	restartDelayMs?: number,
	webRtcServerListenInfos?: (index: number) => import("mediasoup").types.TransportListenInfo[],
): Promise<WorkerPool> {
	const pool = await WorkerPool.create({
		size,
		logger: silentLogger,
		...(restartDelayMs === undefined ? {} : { restartDelayMs }),
		...(webRtcServerListenInfos === undefined ? {} : { webRtcServerListenInfos }),
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

	it("gives each worker a WebRtcServer on port base + index, shared by its transports", async () => {
		// A free TCP port to use as the base (one worker, so one port).
		const base = await new Promise<number>((resolve) => {
			const probe = net.createServer().listen(0, "127.0.0.1", () => {
				const port = (probe.address() as net.AddressInfo).port;

				probe.close(() => resolve(port));
			});
		});
		const rtc = { ...loadConfig({}).rtc, port: base };
		const pool = await createPool(1, undefined, (index) => webRtcServerListenInfos(rtc, index));

		expect(pool.stats()[0]?.ports).toEqual({ udp: base, tcp: base });

		const { router, webRtcServer } = await pool.allocateRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });

		if (!webRtcServer) {
			throw new Error("no WebRtcServer");
		}

		const transports = await Promise.all(
			[1, 2, 3].map(() => router.createWebRtcTransport({ webRtcServer, enableUdp: true, enableTcp: true })),
		);

		for (const transport of transports) {
			expect(transport.iceCandidates.map((c) => c.port)).toEqual([base, base]);
		}
	});

	it("spreads WebRtcServers of several workers over the range when the base port is 0", async () => {
		const rtc = { ...loadConfig({}).rtc, port: 0 };
		const pool = await createPool(2, undefined, (index) => webRtcServerListenInfos(rtc, index));
		const ports = pool.stats().map((s) => s.ports?.udp ?? 0);

		expect(new Set(ports).size).toBe(2);
		for (const port of ports) {
			expect(port).toBeGreaterThanOrEqual(rtc.minPort);
			expect(port).toBeLessThanOrEqual(rtc.maxPort);
		}
	});

	it("allocates routers away from the workers a call already uses, and counts consumers", async () => {
		const pool = await createPool(2);
		const first = await pool.allocateRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		const second = await pool.allocateRouter(
			{ mediaCodecs: DEFAULT_MEDIA_CODECS },
			{ avoid: new Set([first.workerIndex]), strict: true },
		);

		expect(second.workerIndex).not.toBe(first.workerIndex);
		expect(pool.hasLiveWorkerOutside(new Set([0, 1]))).toBe(false);
		await expect(
			pool.allocateRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS }, { avoid: new Set([0, 1]), strict: true }),
		).rejects.toThrow(NoLiveWorkerError);

		// A consumer on the first worker makes the second the least loaded, even with more routers.
		const transport = await first.router.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1" } });
		const producer = await transport.produce({
			kind: "audio",
			rtpParameters: {
				codecs: [{ mimeType: "audio/opus", payloadType: 100, clockRate: 48000, channels: 2 }],
				encodings: [{ ssrc: 1111 }],
			},
		});

		await transport.consume({ producerId: producer.id, rtpCapabilities: first.router.rtpCapabilities });
		await pool.allocateRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		expect(pool.stats()[first.workerIndex]?.consumers).toBe(1);

		const next = await pool.allocateRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });

		expect(next.workerIndex).toBe(second.workerIndex);
		expect(pool.stats()[second.workerIndex]?.routers).toBe(3);
		transport.close();
		expect(pool.stats()[first.workerIndex]?.consumers).toBe(0);
	});

	it("refuses a pool without workers", async () => {
		await expect(WorkerPool.create({ size: 0, logger: silentLogger })).rejects.toThrow(RangeError);
	});
});
