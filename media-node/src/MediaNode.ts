// The whole media node, assembled from its configuration: worker pool (one
// WebRtcServer per worker), rooms, signaling socket, HTTP server, stats
// sampler, api reporter and TURN probe (when TURN_URLS and TURN_SECRET are
// set; its results ride on the heartbeats, and a change of TURN state sends a
// heartbeat at once). main.ts runs one; tests run several in-process.
//
// drain() is the graceful shutdown: no new sockets or calls, peers get
// `nodeDraining`, the api gets a heartbeat with draining:true, calls get up
// to MEDIA_DRAIN_TIMEOUT_MS to end, then the rest are ended (callEnded
// "node-shutdown"), queued events are flushed (briefly) and everything closes.

import * as mediasoup from "mediasoup";
import { RTC_PATH } from "../../protocol/src/signaling.ts";
import { ApiReporter } from "./ApiReporter.ts";
import { ApnsRelay, DEFAULT_APNS_ORIGIN } from "./ApnsRelay.ts";
import { CallTokenVerifier, type TokenVerifier } from "./CallTokenVerifier.ts";
import type { MediaNodeConfig } from "./config.ts";
import type { Logger } from "./Logger.ts";
import { renderMetrics, StatsSampler } from "./metrics.ts";
import { RoomRegistry } from "./RoomRegistry.ts";
import { webRtcServerListenInfos } from "./rtc.ts";
import { SignalingServer } from "./SignalingServer.ts";
import { MediaNodeServer } from "./server.ts";
import { TurnProbe } from "./TurnProbe.ts";
import { WorkerPool } from "./WorkerPool.ts";

/** How long drain() waits for queued webhook events after the calls are gone. */
export const EVENT_FLUSH_TIMEOUT_MS = 5_000;
/** How long drain() lets sockets finish their closing handshakes. */
export const SOCKET_CLOSE_TIMEOUT_MS = 2_000;

export type MediaNodeOptions = {
	config: MediaNodeConfig;
	logger: Logger;
	/** Overrides the JWKS-backed verifier (tests). */
	verifier?: TokenVerifier;
	fetch?: typeof globalThis.fetch;
	/** mediasoup-worker binary (default: mediasoup's own lookup). */
	workerBin?: string;
};

export class MediaNode {
	#config: MediaNodeConfig;
	#logger: Logger;
	#pool: WorkerPool;
	#rooms: RoomRegistry;
	#signaling: SignalingServer;
	#server: MediaNodeServer;
	#reporter: ApiReporter;
	#sampler: StatsSampler;
	#turn: TurnProbe | undefined;
	#publicUrl: string;
	#draining: Promise<void> | undefined;
	#closed = false;

	static async create(options: MediaNodeOptions): Promise<MediaNode> {
		const { config, logger } = options;
		const pool = await WorkerPool.create({
			size: config.workers,
			logger,
			workerLogLevel: config.logLevel === "debug" ? "debug" : "warn",
			webRtcServerListenInfos: (index) => webRtcServerListenInfos(config.rtc, index),
			...(options.workerBin === undefined ? {} : { workerBin: options.workerBin }),
		});

		try {
			return await MediaNode.#assemble(options, pool);
		} catch (error) {
			await pool.close();
			throw error;
		}
	}

	static async #assemble(options: MediaNodeOptions, pool: WorkerPool): Promise<MediaNode> {
		const { config, logger } = options;
		// The reporter needs the node's load, the rooms need the reporter: late binding.
		let node: MediaNode | undefined;
		const reporter = ApiReporter.create({
			apiUrl: config.api.url,
			secret: config.api.secret,
			nodeId: config.node.id,
			heartbeatMs: config.heartbeatMs,
			queueMax: config.eventQueueMax,
			logger,
			describe: () => {
				if (!node) {
					throw new Error("media node not assembled yet");
				}

				return node.#describe();
			},
			...(options.fetch === undefined ? {} : { fetch: options.fetch }),
		});
		const rooms = RoomRegistry.create({ pool, rtc: config.rtc, limits: config.limits, events: reporter, logger });
		const verifier =
			options.verifier ??
			(config.api.jwksUrl === undefined
				? undefined
				: CallTokenVerifier.create({ jwksUrl: config.api.jwksUrl, issuer: config.api.issuer }));

		if (!verifier) {
			logger.warn("no JWKS configured (API_URL / MEDIA_JWKS_URL): every socket will be refused");
		}

		const signaling = SignalingServer.create({ verifier, rooms, nodeId: config.node.id, logger });
		const sampler = StatsSampler.create({ pool, rooms, logger, intervalMs: config.statsIntervalMs });
		const turn = MediaNode.#turnProbe(config, logger, () => void reporter.heartbeat());
		let server: MediaNodeServer;

		try {
			server = await MediaNodeServer.create({
				host: config.http.host,
				port: config.http.port,
				health: {
					get liveWorkerCount() {
						return pool.liveWorkerCount;
					},
					get draining() {
						return rooms.draining;
					},
				},
				logger,
				metrics: () => {
					if (!node) {
						throw new Error("media node not assembled yet");
					}

					return node.metrics();
				},
				upgrade: { path: RTC_PATH, handle: (req, socket, head) => signaling.handleUpgrade(req, socket, head) },
				endCall: { nodeId: config.node.id, secret: config.api.secret, end: (callId) => rooms.end(callId) },
				apnsRelay: new ApnsRelay({
					secret: config.api.secret,
					origin: process.env.APNS_ENDPOINT ?? DEFAULT_APNS_ORIGIN,
					logger,
				}),
			});
		} catch (error) {
			signaling.terminate();
			throw error;
		}

		node = new MediaNode(config, logger, { pool, rooms, signaling, server, reporter, sampler, turn });
		sampler.start();
		reporter.start();
		turn?.start();

		return node;
	}

	static #turnProbe(config: MediaNodeConfig, logger: Logger, onChange: () => void): TurnProbe | undefined {
		const { urls, secret } = config.turn;

		if (urls.length === 0) {
			return undefined;
		}
		if (secret === undefined) {
			logger.warn("TURN probe off: TURN_URLS is set but TURN_SECRET is not", { servers: urls });

			return undefined;
		}

		return TurnProbe.create({
			urls,
			secret,
			user: config.turn.probeUser,
			intervalMs: config.turn.probeIntervalMs,
			timeoutMs: config.turn.probeTimeoutMs,
			logger,
			onChange,
		});
	}

	private constructor(
		config: MediaNodeConfig,
		logger: Logger,
		parts: {
			pool: WorkerPool;
			rooms: RoomRegistry;
			signaling: SignalingServer;
			server: MediaNodeServer;
			reporter: ApiReporter;
			sampler: StatsSampler;
			turn: TurnProbe | undefined;
		},
	) {
		this.#config = config;
		this.#logger = logger;
		this.#pool = parts.pool;
		this.#rooms = parts.rooms;
		this.#signaling = parts.signaling;
		this.#server = parts.server;
		this.#reporter = parts.reporter;
		this.#sampler = parts.sampler;
		this.#turn = parts.turn;
		this.#publicUrl =
			config.node.publicUrl ??
			`ws://${MediaNode.#urlHost(config.rtc.announcedAddress)}:${parts.server.port}${RTC_PATH}`;
	}

	get port(): number {
		return this.#server.port;
	}

	get publicUrl(): string {
		return this.#publicUrl;
	}

	get pool(): WorkerPool {
		return this.#pool;
	}

	get rooms(): RoomRegistry {
		return this.#rooms;
	}

	get reporter(): ApiReporter {
		return this.#reporter;
	}

	get sampler(): StatsSampler {
		return this.#sampler;
	}

	get draining(): boolean {
		return this.#rooms.draining;
	}

	/** The TURN probe; undefined when TURN_URLS or TURN_SECRET is unset. */
	get turnProbe(): TurnProbe | undefined {
		return this.#turn;
	}

	metrics(): string {
		return renderMetrics({
			nodeId: this.#config.node.id,
			region: this.#config.node.region,
			pool: this.#pool,
			rooms: this.#rooms,
			signaling: this.#signaling,
			reporter: this.#reporter,
			sampler: this.#sampler,
			maxPeers: this.#config.limits.maxPeers,
			turn: this.#turn === undefined ? undefined : () => this.#turn?.status() ?? [],
		});
	}

	/** Fields logged once the node listens. */
	describeStartup(): Record<string, unknown> {
		return {
			host: this.#server.address.address,
			port: this.#server.port,
			url: this.#publicUrl,
			nodeId: this.#config.node.id,
			region: this.#config.node.region,
			workers: this.#pool.liveWorkerCount,
			webRtcServers: this.#pool.stats().map((w) => w.ports),
			api: this.#reporter.enabled ? this.#config.api.url : null,
			turnProbe: this.#turn?.urls ?? null,
			mediasoupVersion: mediasoup.version,
			pid: process.pid,
		};
	}

	/** Graceful shutdown (see the file comment). Idempotent; resolves when everything is closed. */
	drain(timeoutMs: number = this.#config.limits.drainTimeoutMs): Promise<void> {
		this.#draining ??= this.#drain(timeoutMs);

		return this.#draining;
	}

	/** Immediate shutdown: calls end at once, nothing is awaited from the api. */
	async close(): Promise<void> {
		if (this.#closed) {
			return;
		}
		this.#closed = true;
		this.#reporter.stop();
		this.#sampler.stop();
		this.#turn?.stop();
		this.#rooms.closeAll("node-shutdown");
		this.#signaling.terminate();
		await this.#server.close();
		await this.#pool.close();
	}

	async #drain(timeoutMs: number): Promise<void> {
		const deadline = new Date(Date.now() + timeoutMs);
		const before = this.#rooms.counts();

		this.#logger.info("draining", { calls: before.calls, peers: before.peers, timeoutMs });
		this.#rooms.startDraining(deadline, timeoutMs);
		await this.#reporter.drain();

		const empty = await this.#rooms.waitUntilEmpty(timeoutMs);

		if (!empty) {
			const left = this.#rooms.counts();

			this.#logger.warn("drain timeout: ending remaining calls", { calls: left.calls, peers: left.peers });
			this.#rooms.closeAll("node-shutdown");
		}

		await Promise.all([
			this.#reporter.flush(EVENT_FLUSH_TIMEOUT_MS),
			this.#signaling.shutdown(SOCKET_CLOSE_TIMEOUT_MS),
		]);
		await this.close();
	}

	#describe() {
		const counts = this.#rooms.counts();
		const turn = this.#turn?.report();

		return {
			nodeId: this.#config.node.id,
			url: this.#publicUrl,
			region: this.#config.node.region,
			capacity: this.#config.limits.maxPeers,
			load: {
				calls: counts.calls,
				peers: counts.peers,
				consumers: counts.consumers,
				cpu: this.#sampler.maxWorkerCpu,
			},
			...(turn === undefined ? {} : { turn }),
		};
	}

	static #urlHost(address: string): string {
		return address.includes(":") ? `[${address}]` : address;
	}
}
