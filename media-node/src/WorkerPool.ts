// A fixed-size pool of mediasoup workers (one OS process each).
//
// - Routers go to the least-loaded live worker (fewest consumers, then fewest
//   open + pending routers), so rooms spread over the CPU cores; a caller can
//   exclude workers (a call spreading over several workers wants a new one).
// - With `webRtcServer` options, each worker gets one WebRtcServer (one UDP and
//   one TCP port, `listenInfos(index)`), re-created when a worker restarts;
//   every WebRTC transport of that worker shares those two ports.
// - A worker that dies is reported (error log, `deaths` in stats) and
//   replaced after a back-off delay. Its routers are gone with it: mediasoup
//   closes them and emits their `workerclose` event, which is where room code
//   will learn that its participants must reconnect.

import type { types } from "mediasoup";
import * as mediasoup from "mediasoup";

import type { Logger } from "./Logger.ts";

export const DEFAULT_RESTART_DELAY_MS = 1_000;
export const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that lived this long resets its slot's back-off. */
export const STABLE_UPTIME_MS = 60_000;
export const WORKER_CLOSE_TIMEOUT_MS = 5_000;
export const DEFAULT_WORKER_LOG_LEVEL: types.WorkerLogLevel = "warn";

export type WorkerPoolOptions = {
	size: number;
	logger: Logger;
	workerLogLevel?: types.WorkerLogLevel;
	workerLogTags?: types.WorkerLogTag[];
	/** Overrides mediasoup's default binary lookup. */
	workerBin?: string;
	/** First restart delay; doubles on each consecutive failure. */
	restartDelayMs?: number;
	/** Listen infos of worker `index`'s WebRtcServer; without it, workers have none. */
	webRtcServerListenInfos?: (index: number) => types.TransportListenInfo[];
};

/** A router with the worker slot it lives on and that worker's WebRtcServer. */
export type AllocatedRouter<RouterAppData extends types.AppData = types.AppData> = {
	router: types.Router<RouterAppData>;
	webRtcServer: types.WebRtcServer | undefined;
	workerIndex: number;
};

export type WorkerSlotStats = {
	index: number;
	pid: number | null;
	alive: boolean;
	routers: number;
	consumers: number;
	deaths: number;
	/** UDP and TCP port of the worker's WebRtcServer, when it has one. */
	ports: { udp: number | null; tcp: number | null } | null;
};

export type WorkerCpuSample = { index: number; pid: number; cpuMs: number };

export class NoLiveWorkerError extends Error {
	constructor() {
		super("no live mediasoup worker");
		this.name = "NoLiveWorkerError";
	}
}

type WorkerSlot = {
	index: number;
	worker: types.Worker | undefined;
	webRtcServer: types.WebRtcServer | undefined;
	ports: { udp: number | null; tcp: number | null } | null;
	startedAt: number;
	routers: number;
	consumers: number;
	pendingRouters: number;
	deaths: number;
	consecutiveFailures: number;
	restartTimer: NodeJS.Timeout | undefined;
};

export class WorkerPool {
	#options: Required<Omit<WorkerPoolOptions, "workerBin" | "workerLogTags" | "webRtcServerListenInfos">> &
		Pick<WorkerPoolOptions, "workerBin" | "workerLogTags" | "webRtcServerListenInfos">;
	#logger: Logger;
	#slots: WorkerSlot[];
	#closed = false;

	static async create(options: WorkerPoolOptions): Promise<WorkerPool> {
		if (!Number.isInteger(options.size) || options.size < 1) {
			throw new RangeError(`WorkerPool size must be a positive integer, got ${options.size}`);
		}

		const pool = new WorkerPool(options);

		try {
			await Promise.all(pool.#slots.map((slot) => pool.#startWorker(slot)));
		} catch (error) {
			await pool.close();
			throw error;
		}

		pool.#logger.info("mediasoup workers started", {
			workers: pool.#slots.length,
			pids: pool.#slots.map((slot) => slot.worker?.pid ?? null),
			mediasoupVersion: mediasoup.version,
		});

		return pool;
	}

	private constructor(options: WorkerPoolOptions) {
		this.#options = {
			size: options.size,
			logger: options.logger,
			workerLogLevel: options.workerLogLevel ?? DEFAULT_WORKER_LOG_LEVEL,
			workerLogTags: options.workerLogTags,
			workerBin: options.workerBin,
			restartDelayMs: options.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS,
			webRtcServerListenInfos: options.webRtcServerListenInfos,
		};
		this.#logger = options.logger.child({ component: "WorkerPool" });
		this.#slots = Array.from({ length: options.size }, (_, index) => ({
			index,
			worker: undefined,
			webRtcServer: undefined,
			ports: null,
			startedAt: 0,
			routers: 0,
			consumers: 0,
			pendingRouters: 0,
			deaths: 0,
			consecutiveFailures: 0,
			restartTimer: undefined,
		}));
	}

	get size(): number {
		return this.#slots.length;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get liveWorkerCount(): number {
		return this.#slots.filter((slot) => WorkerPool.#isAlive(slot)).length;
	}

	stats(): WorkerSlotStats[] {
		return this.#slots.map((slot) => ({
			index: slot.index,
			pid: slot.worker?.pid ?? null,
			alive: WorkerPool.#isAlive(slot),
			routers: slot.routers,
			consumers: slot.consumers,
			deaths: slot.deaths,
			ports: slot.ports,
		}));
	}

	/** CPU time (user + system, ms) each live worker process has used so far. */
	async cpuUsage(): Promise<WorkerCpuSample[]> {
		const samples = await Promise.all(
			this.#slots.map(async (slot) => {
				const worker = slot.worker;

				if (!worker || !WorkerPool.#isAlive(slot)) {
					return undefined;
				}
				try {
					const usage = await worker.getResourceUsage();

					return { index: slot.index, pid: worker.pid, cpuMs: usage.ru_utime + usage.ru_stime };
				} catch {
					return undefined;
				}
			}),
		);

		return samples.filter((s): s is WorkerCpuSample => s !== undefined);
	}

	/** Creates a router on the least-loaded live worker. */
	async createRouter<RouterAppData extends types.AppData = types.AppData>(
		options: types.RouterOptions<RouterAppData>,
	): Promise<types.Router<RouterAppData>> {
		return (await this.allocateRouter(options)).router;
	}

	/**
	 * Creates a router on the least-loaded live worker, preferring workers not
	 * in `avoid` (worker indexes); falls back to an avoided one only when no
	 * other is alive and `strict` is false.
	 */
	async allocateRouter<RouterAppData extends types.AppData = types.AppData>(
		options: types.RouterOptions<RouterAppData>,
		{ avoid, strict = false }: { avoid?: ReadonlySet<number>; strict?: boolean } = {},
	): Promise<AllocatedRouter<RouterAppData>> {
		if (this.#closed) {
			throw new Error("WorkerPool is closed");
		}

		const slot = this.#leastLoadedSlot(avoid) ?? (strict ? undefined : this.#leastLoadedSlot());

		if (!slot?.worker) {
			throw new NoLiveWorkerError();
		}

		slot.pendingRouters++;

		try {
			const router = await slot.worker.createRouter(options);

			return { router, webRtcServer: slot.webRtcServer, workerIndex: slot.index };
		} finally {
			slot.pendingRouters--;
		}
	}

	/** Whether some live worker is not in `avoid`. */
	hasLiveWorkerOutside(avoid: ReadonlySet<number>): boolean {
		return this.#leastLoadedSlot(avoid) !== undefined;
	}

	/** Closes every worker and waits for their processes to exit. Idempotent. */
	async close(): Promise<void> {
		if (this.#closed) {
			return;
		}
		this.#closed = true;

		const exits: Promise<void>[] = [];

		for (const slot of this.#slots) {
			clearTimeout(slot.restartTimer);
			slot.restartTimer = undefined;

			const worker = slot.worker;

			if (worker && !worker.subprocessClosed) {
				exits.push(WorkerPool.#waitForExit(worker));
			}
			worker?.close();
		}

		await Promise.all(exits);
		this.#logger.info("mediasoup workers closed");
	}

	static #isAlive(slot: WorkerSlot): boolean {
		return slot.worker !== undefined && !slot.worker.closed && !slot.worker.died;
	}

	static #waitForExit(worker: types.Worker): Promise<void> {
		return new Promise((resolve) => {
			const timer = setTimeout(resolve, WORKER_CLOSE_TIMEOUT_MS);

			worker.once("subprocessclose", () => {
				clearTimeout(timer);
				resolve();
			});
		});
	}

	#leastLoadedSlot(avoid?: ReadonlySet<number>): WorkerSlot | undefined {
		let best: WorkerSlot | undefined;

		for (const slot of this.#slots) {
			if (!WorkerPool.#isAlive(slot) || avoid?.has(slot.index)) {
				continue;
			}
			if (
				!best ||
				slot.consumers < best.consumers ||
				(slot.consumers === best.consumers && slot.routers + slot.pendingRouters < best.routers + best.pendingRouters)
			) {
				best = slot;
			}
		}

		return best;
	}

	async #startWorker(slot: WorkerSlot): Promise<void> {
		const settings: types.WorkerSettings<{ slot: number }> = {
			logLevel: this.#options.workerLogLevel,
			appData: { slot: slot.index },
		};

		if (this.#options.workerLogTags) {
			settings.logTags = this.#options.workerLogTags;
		}
		if (this.#options.workerBin) {
			settings.workerBin = this.#options.workerBin;
		}

		const worker = await mediasoup.createWorker(settings);

		WorkerPool.#detachSignalHandlers(worker);

		let webRtcServer: types.WebRtcServer | undefined;

		if (this.#options.webRtcServerListenInfos) {
			try {
				webRtcServer = await worker.createWebRtcServer({
					listenInfos: this.#options.webRtcServerListenInfos(slot.index),
				});
			} catch (error) {
				worker.close();
				throw error;
			}
		}

		if (this.#closed) {
			// The pool was closed while this worker was starting.
			worker.close();

			return;
		}

		slot.worker = worker;
		slot.webRtcServer = webRtcServer;
		slot.ports = webRtcServer ? await WorkerPool.#serverPorts(webRtcServer) : null;
		slot.startedAt = Date.now();
		slot.routers = 0;
		slot.consumers = 0;

		worker.on("died", (error) => this.#onWorkerDied(slot, worker, error));
		worker.observer.on("newrouter", (router) => {
			if (slot.worker !== worker) {
				return;
			}
			slot.routers++;
			router.observer.once("close", () => {
				if (slot.worker === worker) {
					slot.routers--;
				}
			});
			router.observer.on("newtransport", (transport) => {
				transport.observer.on("newconsumer", (consumer) => {
					if (slot.worker !== worker) {
						return;
					}
					slot.consumers++;
					consumer.observer.once("close", () => {
						if (slot.worker === worker) {
							slot.consumers--;
						}
					});
				});
			});
		});
	}

	/**
	 * mediasoup closes every worker by itself when the Node process gets
	 * SIGINT/SIGTERM. The pool owns the workers' lifetime instead: a graceful
	 * drain needs them running until the calls have ended. (A worker still
	 * exits when this process dies: its channel to us closes.)
	 */
	static #detachSignalHandlers(worker: types.Worker): void {
		const onSignal = (worker as unknown as { onSignal?: unknown }).onSignal;

		if (typeof onSignal === "function") {
			process.removeListener("SIGINT", onSignal as () => void);
			process.removeListener("SIGTERM", onSignal as () => void);
		}
	}

	static async #serverPorts(server: types.WebRtcServer): Promise<{ udp: number | null; tcp: number | null }> {
		const dump = await server.dump();

		return {
			udp: dump.udpSockets[0]?.port ?? null,
			tcp: dump.tcpServers[0]?.port ?? null,
		};
	}

	#onWorkerDied(slot: WorkerSlot, worker: types.Worker, error: Error): void {
		if (slot.worker !== worker) {
			return;
		}

		const uptimeMs = Date.now() - slot.startedAt;

		slot.worker = undefined;
		slot.webRtcServer = undefined;
		slot.ports = null;
		slot.routers = 0;
		slot.consumers = 0;
		slot.deaths++;

		if (uptimeMs >= STABLE_UPTIME_MS) {
			slot.consecutiveFailures = 0;
		}

		this.#logger.error("mediasoup worker died", {
			slot: slot.index,
			pid: worker.pid,
			uptimeMs,
			deaths: slot.deaths,
			liveWorkers: this.liveWorkerCount,
			error,
		});

		this.#scheduleRestart(slot);
	}

	#scheduleRestart(slot: WorkerSlot): void {
		if (this.#closed) {
			return;
		}

		const delayMs = Math.min(
			this.#options.restartDelayMs * 2 ** Math.min(slot.consecutiveFailures, 10),
			MAX_RESTART_DELAY_MS,
		);

		slot.consecutiveFailures++;
		this.#logger.info("restarting mediasoup worker", { slot: slot.index, delayMs });

		slot.restartTimer = setTimeout(() => {
			slot.restartTimer = undefined;
			this.#startWorker(slot).then(
				() => {
					if (slot.worker) {
						this.#logger.info("mediasoup worker restarted", {
							slot: slot.index,
							pid: slot.worker.pid,
							liveWorkers: this.liveWorkerCount,
						});
					}
				},
				(error: unknown) => {
					this.#logger.error("mediasoup worker restart failed", { slot: slot.index, error });
					this.#scheduleRestart(slot);
				},
			);
		}, delayMs);
		// The HTTP server keeps the process alive; a pending restart alone must not.
		slot.restartTimer.unref();
	}
}
