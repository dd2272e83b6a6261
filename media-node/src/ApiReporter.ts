// Registration, heartbeats and room-event webhooks to the api, all signed
// (see signing.ts).
//
//   POST ${API_URL}/internal/media-nodes/heartbeat   every MEDIA_HEARTBEAT_MS
//        {nodeId, url, region, capacity, load:{calls, peers, consumers, cpu}, draining,
//         turn?:{servers:[{url, up, reason?, checkedAt}]}}   (turn: TurnProbe.ts)
//   POST ${API_URL}/internal/media-nodes/events
//        {nodeId, events:[{id, type, callId, userId?, at}]}
//
// The first heartbeat is the registration. A failed heartbeat is not retried
// (the next one follows). Events wait in a bounded in-memory queue and are
// sent in order, in batches, retried with exponential back-off and jitter;
// when the queue is full the oldest event is dropped with a log line. Each
// event has an `id` so the api can ignore a batch delivered twice (a retry
// after a lost response).

import { randomUUID } from "node:crypto";

import type { NodeTurnReport } from "../../protocol/src/calls.ts";
import type { Logger } from "./Logger.ts";
import { signedHeaders } from "./signing.ts";

export const HEARTBEAT_PATH = "/internal/media-nodes/heartbeat";
export const EVENTS_PATH = "/internal/media-nodes/events";
export const REQUEST_TIMEOUT_MS = 5_000;
export const MAX_BATCH = 100;
export const RETRY_BASE_MS = 500;
export const RETRY_MAX_MS = 60_000;

export type RoomEventType = "call.started" | "call.ended" | "participant.joined" | "participant.left";

export type RoomEvent = {
	id: string;
	type: RoomEventType;
	callId: string;
	userId?: string;
	/** ISO 8601 time of the event on the node. */
	at: string;
};

export type NodeLoad = { calls: number; peers: number; consumers: number; cpu: number };

export type HeartbeatBody = {
	nodeId: string;
	url: string;
	region: string;
	capacity: number;
	load: NodeLoad;
	draining: boolean;
	/** The TURN probe's fresh results; absent when the node probes no TURN server. */
	turn?: NodeTurnReport;
};

/** Where rooms report their events. */
export interface EventSink {
	emit(type: RoomEventType, callId: string, userId?: string): void;
}

export type ApiReporterStats = {
	enabled: boolean;
	queued: number;
	dropped: number;
	sent: number;
	failures: number;
	heartbeats: number;
	heartbeatFailures: number;
};

export type ApiReporterOptions = {
	apiUrl: string | undefined;
	secret: string | undefined;
	nodeId: string;
	heartbeatMs: number;
	queueMax: number;
	logger: Logger;
	/** The heartbeat body (minus `draining`, which the reporter tracks). */
	describe: () => Omit<HeartbeatBody, "draining">;
	fetch?: typeof globalThis.fetch;
};

export class ApiReporter implements EventSink {
	#options: ApiReporterOptions;
	#logger: Logger;
	#fetch: typeof globalThis.fetch;
	#enabled: boolean;
	#queue: RoomEvent[] = [];
	#inFlight: RoomEvent[] = [];
	#sending = false;
	#attempt = 0;
	#retryTimer: NodeJS.Timeout | undefined;
	#heartbeatTimer: NodeJS.Timeout | undefined;
	#draining = false;
	#stopped = false;
	#heartbeatFailing = false;
	#idleWaiters: (() => void)[] = [];
	#stats = { dropped: 0, sent: 0, failures: 0, heartbeats: 0, heartbeatFailures: 0 };

	static create(options: ApiReporterOptions): ApiReporter {
		return new ApiReporter(options);
	}

	private constructor(options: ApiReporterOptions) {
		this.#options = options;
		this.#logger = options.logger.child({ component: "api-reporter" });
		this.#fetch = options.fetch ?? globalThis.fetch;
		this.#enabled = options.apiUrl !== undefined && options.secret !== undefined;
	}

	get enabled(): boolean {
		return this.#enabled;
	}

	stats(): ApiReporterStats {
		return { enabled: this.#enabled, queued: this.#queue.length + this.#inFlight.length, ...this.#stats };
	}

	/** Sends the first heartbeat (registration) and starts the heartbeat timer. */
	start(): void {
		if (!this.#enabled) {
			const missing = [
				this.#options.apiUrl === undefined ? "API_URL" : undefined,
				this.#options.secret === undefined ? "MEDIA_NODE_SECRET" : undefined,
			].filter(Boolean);

			this.#logger.warn("standalone: heartbeats and webhooks to the api are off", { missing });

			return;
		}

		void this.heartbeat();
		this.#heartbeatTimer = setInterval(() => void this.heartbeat(), this.#options.heartbeatMs);
		this.#heartbeatTimer.unref();
	}

	emit(type: RoomEventType, callId: string, userId?: string): void {
		if (!this.#enabled || this.#stopped) {
			return;
		}

		const event: RoomEvent = {
			id: randomUUID(),
			type,
			callId,
			...(userId === undefined ? {} : { userId }),
			at: new Date().toISOString(),
		};

		this.#queue.push(event);
		this.#trim();
		this.#pump();
	}

	/** Marks the node as draining and sends a heartbeat saying so at once. */
	async drain(): Promise<void> {
		this.#draining = true;
		await this.heartbeat();
	}

	/** One heartbeat now; resolves to whether the api accepted it. Never throws. */
	async heartbeat(): Promise<boolean> {
		if (!this.#enabled) {
			return false;
		}

		const body: HeartbeatBody = { ...this.#options.describe(), draining: this.#draining };

		try {
			const res = await this.#post(HEARTBEAT_PATH, JSON.stringify(body));

			await res.body?.cancel();
			if (!res.ok) {
				throw new Error(`api answered ${res.status}`);
			}
			this.#stats.heartbeats++;
			if (this.#heartbeatFailing) {
				this.#heartbeatFailing = false;
				this.#logger.info("heartbeats reach the api again");
			} else {
				this.#logger.debug("heartbeat sent", { draining: body.draining, load: body.load });
			}

			return true;
		} catch (error) {
			this.#stats.heartbeatFailures++;
			// One line when beats start failing, then quiet until they recover.
			if (!this.#heartbeatFailing) {
				this.#heartbeatFailing = true;
				this.#logger.warn("heartbeat failed", { error: ApiReporter.#describeError(error) });
			}

			return false;
		}
	}

	/** Waits until every queued event is sent, or `timeoutMs` passes. */
	async flush(timeoutMs: number): Promise<boolean> {
		if (this.#queue.length === 0 && this.#inFlight.length === 0) {
			return true;
		}

		// Don't wait out a long back-off: try now.
		if (this.#retryTimer !== undefined) {
			clearTimeout(this.#retryTimer);
			this.#retryTimer = undefined;
			this.#pump();
		}

		let timer: NodeJS.Timeout | undefined;
		const idle = new Promise<boolean>((resolve) => this.#idleWaiters.push(() => resolve(true)));
		const timeout = new Promise<boolean>((resolve) => {
			timer = setTimeout(() => resolve(false), timeoutMs);
		});
		const flushed = await Promise.race([idle, timeout]);

		clearTimeout(timer);
		if (!flushed) {
			this.#logger.warn("events not delivered before shutdown", { queued: this.stats().queued });
		}

		return flushed;
	}

	/** Stops the timers; queued events are abandoned. */
	stop(): void {
		this.#stopped = true;
		clearInterval(this.#heartbeatTimer);
		clearTimeout(this.#retryTimer);
		this.#heartbeatTimer = undefined;
		this.#retryTimer = undefined;
	}

	#trim(): void {
		const max = this.#options.queueMax;
		const over = this.#queue.length + this.#inFlight.length - max;

		if (over > 0) {
			const dropped = this.#queue.splice(0, Math.min(over, this.#queue.length));

			this.#stats.dropped += dropped.length;
			this.#logger.warn("event queue full, dropped oldest events", {
				dropped: dropped.length,
				queueMax: max,
				oldest: dropped.map((e) => ({ type: e.type, callId: e.callId, at: e.at })),
			});
		}
	}

	#pump(): void {
		if (this.#sending || this.#retryTimer !== undefined || this.#stopped || this.#queue.length === 0) {
			if (this.#queue.length === 0 && this.#inFlight.length === 0) {
				this.#notifyIdle();
			}

			return;
		}

		this.#sending = true;
		this.#inFlight = this.#queue.splice(0, MAX_BATCH);

		const batch = this.#inFlight;

		this.#send(batch).then(
			(outcome) => {
				this.#sending = false;
				this.#inFlight = [];

				if (outcome === "retry") {
					// Back to the head of the queue, in order; trimming keeps the bound.
					this.#queue.unshift(...batch);
					this.#trim();
					this.#scheduleRetry();
				} else {
					this.#attempt = 0;
					this.#pump();
				}
			},
			() => {
				// #send never rejects; keep the types honest anyway.
				this.#sending = false;
			},
		);
	}

	async #send(batch: RoomEvent[]): Promise<"done" | "retry"> {
		const body = JSON.stringify({ nodeId: this.#options.nodeId, events: batch });

		try {
			const res = await this.#post(EVENTS_PATH, body);

			await res.body?.cancel();
			if (res.ok) {
				this.#stats.sent += batch.length;
				if (this.#attempt > 0) {
					this.#logger.info("events delivered after retries", { attempts: this.#attempt + 1, events: batch.length });
				}

				return "done";
			}
			if (res.status === 400 || res.status === 413 || res.status === 422) {
				// The api will never take this batch; retrying would block the queue.
				this.#stats.dropped += batch.length;
				this.#logger.error("api refused events; dropped", { status: res.status, events: batch.length });

				return "done";
			}
			throw new Error(`api answered ${res.status}`);
		} catch (error) {
			this.#stats.failures++;
			this.#logger.warn("event delivery failed; will retry", {
				attempt: this.#attempt + 1,
				events: batch.length,
				error: ApiReporter.#describeError(error),
			});

			return "retry";
		}
	}

	#scheduleRetry(): void {
		if (this.#stopped) {
			return;
		}

		const ceiling = Math.min(RETRY_BASE_MS * 2 ** Math.min(this.#attempt, 20), RETRY_MAX_MS);
		// Full jitter in [ceiling/2, ceiling].
		const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);

		this.#attempt++;
		this.#retryTimer = setTimeout(() => {
			this.#retryTimer = undefined;
			this.#pump();
		}, delay);
		this.#retryTimer.unref();
	}

	#notifyIdle(): void {
		for (const waiter of this.#idleWaiters.splice(0)) {
			waiter();
		}
	}

	async #post(path: string, body: string): Promise<Response> {
		const { apiUrl, secret, nodeId } = this.#options;

		if (apiUrl === undefined || secret === undefined) {
			throw new Error("api reporting is not configured");
		}

		return await this.#fetch(`${apiUrl.replace(/\/+$/, "")}${path}`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"x-request-id": randomUUID(),
				...signedHeaders(nodeId, secret, body),
			},
			body,
			signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
		});
	}

	static #describeError(error: unknown): string {
		if (error instanceof Error) {
			const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";

			return `${error.message}${cause}`;
		}

		return String(error);
	}
}
