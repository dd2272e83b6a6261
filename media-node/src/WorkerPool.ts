// A fixed-size pool of mediasoup workers (one OS process each).
//
// - Routers go to the least-loaded live worker (open routers + routers being
//   created), so rooms spread over the CPU cores.
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
};

export type WorkerSlotStats = {
	index: number;
	pid: number | null;
	alive: boolean;
	routers: number;
	deaths: number;
};

export class NoLiveWorkerError extends Error {
	constructor() {
		super("no live mediasoup worker");
		this.name = "NoLiveWorkerError";
	}
}

type WorkerSlot = {
	index: number;
	worker: types.Worker | undefined;
	startedAt: number;
	routers: number;
	pendingRouters: number;
	deaths: number;
	consecutiveFailures: number;
	restartTimer: NodeJS.Timeout | undefined;
};

export class WorkerPool {
	#options: Required<Omit<WorkerPoolOptions, "workerBin" | "workerLogTags">> &
		Pick<WorkerPoolOptions, "workerBin" | "workerLogTags">;
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
		};
		this.#logger = options.logger.child({ component: "WorkerPool" });
		this.#slots = Array.from({ length: options.size }, (_, index) => ({
			index,
			worker: undefined,
			startedAt: 0,
			routers: 0,
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
			deaths: slot.deaths,
		}));
	}

	/** Creates a router on the least-loaded live worker. */
	async createRouter<RouterAppData extends types.AppData = types.AppData>(
		options: types.RouterOptions<RouterAppData>,
	): Promise<types.Router<RouterAppData>> {
		if (this.#closed) {
			throw new Error("WorkerPool is closed");
		}

		const slot = this.#leastLoadedSlot();

		if (!slot?.worker) {
			throw new NoLiveWorkerError();
		}

		slot.pendingRouters++;

		try {
			return await slot.worker.createRouter(options);
		} finally {
			slot.pendingRouters--;
		}
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

	#leastLoadedSlot(): WorkerSlot | undefined {
		let best: WorkerSlot | undefined;

		for (const slot of this.#slots) {
			if (!WorkerPool.#isAlive(slot)) {
				continue;
			}
			if (!best || slot.routers + slot.pendingRouters < best.routers + best.pendingRouters) {
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

		if (this.#closed) {
			// The pool was closed while this worker was starting.
			worker.close();

			return;
		}

		slot.worker = worker;
		slot.startedAt = Date.now();
		slot.routers = 0;

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
		});
	}

	#onWorkerDied(slot: WorkerSlot, worker: types.Worker, error: Error): void {
		if (slot.worker !== worker) {
			return;
		}

		const uptimeMs = Date.now() - slot.startedAt;

		slot.worker = undefined;
		slot.routers = 0;
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
