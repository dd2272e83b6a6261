// Media figure: how many consumers one mediasoup worker forwards before its
// core saturates.
//
// Method. The worker is the media node's own: its WorkerPool with one worker
// (MEDIA_WORKERS=1, the node's worker settings and WebRtcServer) and a router
// with the node's codecs (DEFAULT_MEDIA_CODECS), as Room.ts creates it. The
// load is synthetic and cheap for this machine's other core, so that only the
// measured worker saturates:
//   - SPEAKERS senders, each a comedia PlainTransport with an Opus producer
//     (50 packets/s of 120 B) and a VP8 producer (30 frames/s of 2 × 1,100 B,
//     ≈ 530 kbit/s, a keyframe every 0.5 s), fed with RTP built in this
//     process (valid VP8 payload descriptors, so the SFU parses it as it
//     would a browser's);
//   - receivers, each a PlainTransport with SRTP (AES_CM_128_HMAC_SHA1_80,
//     the cipher WebRTC uses) consuming every producer, sending to a loopback
//     port where nothing listens (the kernel drops the packets).
// Receivers are added stepwise; after each step the worker process's CPU
// (utime + stime from /proc/<pid>/stat) is sampled over a window, until it
// reaches 95% of one core (or a cap). The figure is the consumer count at 95%,
// interpolated between the two steps around it; the baseline is the count at
// 50%. Plain transports skip what WebRTC transports add per packet
// (transport-wide congestion control feedback, RTCP from receivers, simulcast
// layer switching), so a real call saturates earlier: read it as an upper bound.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { loadConfig } from "../media-node/src/config.ts";
import { Logger } from "../media-node/src/Logger.ts";
import { DEFAULT_MEDIA_CODECS, webRtcServerListenInfos } from "../media-node/src/rtc.ts";
import { type AllocatedRouter, WorkerPool } from "../media-node/src/WorkerPool.ts";
import type { Figure } from "./accounts.ts";

type Router = AllocatedRouter["router"];
type PlainTransport = Awaited<ReturnType<Router["createPlainTransport"]>>;

const SPEAKERS = 8;
const AUDIO_PPS = 50;
const AUDIO_BYTES = 120;
const VIDEO_FPS = 30;
const VIDEO_PACKETS_PER_FRAME = 2;
const VIDEO_BYTES = 1_100;
const KEYFRAME_EVERY = 15;
const TARGET_CPU = 0.95;
const BASELINE_CPU = 0.5;
const SRTP = "AES_CM_128_HMAC_SHA1_80" as const;

interface Plan {
	/** CPU sampling window per step. */
	windowMs: number;
	/** Steps planned up to the estimated saturation point. */
	steps: number;
	maxConsumers: number;
	budgetMs: number;
}
const FULL: Plan = { windowMs: 2_000, steps: 10, maxConsumers: 24_000, budgetMs: 120_000 };
const QUICK: Plan = { windowMs: 1_000, steps: 4, maxConsumers: 12_000, budgetMs: 22_000 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const log = (message: string) => process.stderr.write(`[media] ${message}\n`);

function clockTicks(): number {
	try {
		return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
	} catch {
		return 100;
	}
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
	return Number(fields[11]) + Number(fields[12]);
}

/** Share of one core the process used over `windowMs`. */
async function sampleCpu(pid: number, windowMs: number, ticksPerSecond: number): Promise<number> {
	const t0 = performance.now();
	const c0 = cpuTicks(pid);
	await sleep(windowMs);
	const c1 = cpuTicks(pid);
	return (c1 - c0) / ticksPerSecond / ((performance.now() - t0) / 1000);
}

/** One sender: RTP for an Opus and a VP8 stream from one UDP socket into a comedia PlainTransport. */
class Speaker {
	readonly audioSsrc = randomBytes(4).readUInt32BE() >>> 1;
	readonly videoSsrc = randomBytes(4).readUInt32BE() >>> 1;
	readonly #socket: Socket = createSocket("udp4");
	readonly #port: number;
	#audioSeq = 0;
	#videoSeq = 0;
	#frames = 0;
	#nextAudio = performance.now();
	#nextVideo = performance.now();

	constructor(port: number) {
		this.#port = port;
		this.#socket.on("message", () => {}); // RTCP (receiver reports, PLI) is not needed
	}

	static packet(pt: number, marker: boolean, seq: number, ts: number, ssrc: number, payload: Buffer): Buffer {
		const header = Buffer.alloc(12);
		header[0] = 0x80;
		header[1] = (marker ? 0x80 : 0) | pt;
		header.writeUInt16BE(seq & 0xffff, 2);
		header.writeUInt32BE(ts >>> 0, 4);
		header.writeUInt32BE(ssrc, 8);
		return Buffer.concat([header, payload]);
	}

	#vp8(first: boolean, key: boolean): Buffer {
		const payload = Buffer.alloc(VIDEO_BYTES);
		const pictureId = this.#frames & 0x7fff;
		payload[0] = first ? 0x90 : 0x80; // X, S (start of partition 0), PID 0
		payload[1] = 0x80; // I: picture id present
		payload[2] = 0x80 | (pictureId >> 8); // M: 15-bit picture id
		payload[3] = pictureId & 0xff;
		if (first) {
			payload[4] = key ? 0x10 : 0x11; // frame tag: P bit clear on keyframes
			payload.set([0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00], 7); // keyframe start code, 320 × 240
		}
		return payload;
	}

	/** Sends whatever is due now. */
	tick(now: number): void {
		while (this.#nextAudio <= now) {
			const ts = Math.round((this.#nextAudio * 48_000) / 1000);
			const payload = Buffer.alloc(AUDIO_BYTES, 0x55);
			this.#send(Speaker.packet(100, false, this.#audioSeq++, ts, this.audioSsrc, payload));
			this.#nextAudio += 1000 / AUDIO_PPS;
		}
		while (this.#nextVideo <= now) {
			const ts = Math.round((this.#nextVideo * 90_000) / 1000);
			const key = this.#frames % KEYFRAME_EVERY === 0;
			for (let i = 0; i < VIDEO_PACKETS_PER_FRAME; i++) {
				const last = i === VIDEO_PACKETS_PER_FRAME - 1;
				this.#send(Speaker.packet(101, last, this.#videoSeq++, ts, this.videoSsrc, this.#vp8(i === 0, key)));
			}
			this.#frames++;
			this.#nextVideo += 1000 / VIDEO_FPS;
		}
	}

	#send(packet: Buffer): void {
		this.#socket.send(packet, this.#port, "127.0.0.1");
	}

	close(): void {
		this.#socket.close();
	}
}

/** A loopback UDP port with no listener: the consumers' packets go there and are dropped by the kernel. */
async function deadPort(preferred: number): Promise<number> {
	for (const candidate of [preferred, 0]) {
		const socket = createSocket("udp4");
		const port = await new Promise<number | undefined>((resolve) => {
			socket.once("error", () => resolve(undefined));
			socket.bind(candidate, "127.0.0.1", () => resolve(socket.address().port));
		});
		await new Promise<void>((resolve) => socket.close(() => resolve()));
		if (port !== undefined) return port;
	}
	throw new Error("no free UDP port for the sink");
}

interface Point {
	consumers: number;
	cpu: number;
}

/** Consumers at `cpu`, interpolated between the measured points around it, else extrapolated from a line fit. */
function consumersAt(points: Point[], cpu: number): { value: number; extrapolated: boolean } {
	for (let i = 1; i < points.length; i++) {
		const [a, b] = [points[i - 1] as Point, points[i] as Point];
		if (a.cpu < cpu && b.cpu >= cpu) {
			return {
				value: a.consumers + ((cpu - a.cpu) / (b.cpu - a.cpu)) * (b.consumers - a.consumers),
				extrapolated: false,
			};
		}
	}
	const n = points.length;
	const mx = points.reduce((s, p) => s + p.consumers, 0) / n;
	const my = points.reduce((s, p) => s + p.cpu, 0) / n;
	const slope =
		points.reduce((s, p) => s + (p.consumers - mx) * (p.cpu - my), 0) /
		Math.max(
			1e-9,
			points.reduce((s, p) => s + (p.consumers - mx) ** 2, 0),
		);
	return { value: mx + (cpu - my) / Math.max(slope, 1e-12), extrapolated: true };
}

export async function benchMedia(quick: boolean, dataDir: string, port: number): Promise<Figure[]> {
	void dataDir; // nothing to persist
	const plan = quick ? QUICK : FULL;
	const started = performance.now();
	const ticksPerSecond = clockTicks();
	const config = loadConfig({ MEDIA_WORKERS: "1", MEDIA_RTC_PORT: "0", LOG_LEVEL: "warn" });
	const logger = Logger.create({ level: "warn", sink: (line) => process.stderr.write(line) });
	const pool = await WorkerPool.create({
		size: config.workers,
		logger,
		workerLogLevel: "warn",
		webRtcServerListenInfos: (index) => webRtcServerListenInfos(config.rtc, index),
	});
	const speakers: Speaker[] = [];
	const transports: PlainTransport[] = [];
	let timer: NodeJS.Timeout | undefined;
	try {
		const pid = pool.stats()[0]?.pid;
		if (!pid) throw new Error("the media worker did not start");
		const router = await pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		const listenInfo = { protocol: "udp" as const, ip: "127.0.0.1" };
		const producerIds: string[] = [];
		for (let i = 0; i < SPEAKERS; i++) {
			const transport = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true });
			transports.push(transport);
			const speaker = new Speaker(transport.tuple.localPort);
			speakers.push(speaker);
			const audio = await transport.produce({
				kind: "audio",
				rtpParameters: {
					codecs: [{ mimeType: "audio/opus", payloadType: 100, clockRate: 48_000, channels: 2 }],
					encodings: [{ ssrc: speaker.audioSsrc }],
				},
			});
			const video = await transport.produce({
				kind: "video",
				rtpParameters: {
					codecs: [
						{
							mimeType: "video/VP8",
							payloadType: 101,
							clockRate: 90_000,
							rtcpFeedback: [{ type: "nack" }, { type: "nack", parameter: "pli" }, { type: "ccm", parameter: "fir" }],
						},
					],
					encodings: [{ ssrc: speaker.videoSsrc }],
				},
			});
			producerIds.push(audio.id, video.id);
		}
		timer = setInterval(() => {
			const now = performance.now();
			for (const speaker of speakers) speaker.tick(now);
		}, 5);

		const sink = await deadPort(port);
		const rtpCapabilities = router.rtpCapabilities;
		let consumers = 0;
		let probe: Awaited<ReturnType<PlainTransport["consume"]>> | undefined;
		const addReceivers = async (count: number) => {
			for (let r = 0; r < count; r++) {
				const transport = await router.createPlainTransport({
					listenInfo,
					rtcpMux: true,
					comedia: false,
					enableSrtp: true,
					srtpCryptoSuite: SRTP,
				});
				transports.push(transport);
				await transport.connect({
					ip: "127.0.0.1",
					port: sink,
					srtpParameters: { cryptoSuite: SRTP, keyBase64: randomBytes(30).toString("base64") },
				});
				for (const producerId of producerIds) {
					const consumer = await transport.consume({ producerId, rtpCapabilities });
					if (consumer.kind === "video") probe ??= consumer;
					consumers++;
				}
			}
		};
		const perReceiver = producerIds.length;
		const points: Point[] = [];
		const measure = async () => {
			await sleep(700); // new video consumers start at the next keyframe (every 0.5 s)
			const cpu = await sampleCpu(pid, plan.windowMs, ticksPerSecond);
			points.push({ consumers, cpu });
			log(`${consumers} consumers: worker at ${(cpu * 100).toFixed(1)}% of one core`);
			return cpu;
		};

		await sleep(500);
		await measure();
		await addReceivers(Math.ceil(256 / perReceiver));
		let cpu = await measure();
		const sent = ((await probe?.getStats()) ?? []).reduce((s, stat) => s + (stat.packetCount ?? 0), 0);
		if (sent === 0) throw new Error("the consumers forward nothing: the synthetic RTP is not accepted");
		const first = points[0] as Point;
		const perConsumer = Math.max((cpu - first.cpu) / consumers, 1e-6);
		const estimate = (TARGET_CPU - first.cpu) / perConsumer;
		const step = Math.max(1, Math.ceil(estimate / plan.steps / perReceiver));
		log(`≈ ${(perConsumer * 1e6).toFixed(0)} µs of CPU per consumer-second; steps of ${step * perReceiver} consumers`);
		while (
			cpu < TARGET_CPU &&
			consumers + step * perReceiver <= plan.maxConsumers &&
			performance.now() - started < plan.budgetMs
		) {
			await addReceivers(step);
			cpu = await measure();
		}

		const at95 = consumersAt(points, TARGET_CPU);
		const at50 = consumersAt(points, BASELINE_CPU);
		const videoShare = 0.5;
		const pps = at95.value * (videoShare * VIDEO_FPS * VIDEO_PACKETS_PER_FRAME + (1 - videoShare) * AUDIO_PPS);
		const usPerPacket = (TARGET_CPU / pps) * 1e6;
		log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
		return [
			{
				key: "consumers_per_worker",
				label:
					`Consumers one mediasoup worker forwards at ${TARGET_CPU * 100}% of a core${at95.extrapolated ? " (extrapolated: cap reached first)" : ""}: ` +
					`media node WorkerPool (MEDIA_WORKERS=1), ${SPEAKERS} speakers × (Opus 50 pkt/s + VP8 ≈ 530 kbit/s, 60 pkt/s) ` +
					`via plain RTP, receivers on SRTP PlainTransports consuming all ${perReceiver} producers, ` +
					`worker CPU from /proc/<pid>/stat utime+stime over ${plan.windowMs / 1000} s per step ` +
					`(≈ ${usPerPacket.toFixed(1)} µs per forwarded packet; no WebRTC BWE/RTCP feedback, so an upper bound)`,
				value: Math.round(at95.value),
				unit: "consumers",
				baseline: {
					label: `consumers at ${BASELINE_CPU * 100}% of the core${at50.extrapolated ? " (extrapolated)" : ""}`,
					value: Math.round(at50.value),
				},
			},
		];
	} finally {
		if (timer) clearInterval(timer);
		for (const speaker of speakers) speaker.close();
		for (const transport of transports) transport.close();
		await pool.close();
	}
}

if (import.meta.main) {
	const figures = await benchMedia(process.argv.includes("--quick"), "", Number(process.env.BENCH_PORT ?? 8890) + 20);
	process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
	process.exit(0);
}
