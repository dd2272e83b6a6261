// The calls on this node, by call id. Creates a Room on the first admitted
// socket of a call (concurrent first sockets share one creation), forgets it
// when it closes, and refuses new sockets while the node drains or is full.

import { CALL_TOKEN_MAX_TTL_SECONDS, RTC_CLOSE_CODES } from "../../protocol/src/signaling.ts";
import type { EventSink } from "./ApiReporter.ts";
import type { CallClaims } from "./CallTokenVerifier.ts";
import type { MediaNodeConfig } from "./config.ts";
import { RtcError } from "./errors.ts";
import type { Logger } from "./Logger.ts";
import type { Peer, PeerConnection } from "./Peer.ts";
import { Room, type RoomCounts } from "./Room.ts";
import { NoLiveWorkerError, type WorkerPool } from "./WorkerPool.ts";

export type RoomRegistryOptions = {
	pool: WorkerPool;
	rtc: MediaNodeConfig["rtc"];
	limits: MediaNodeConfig["limits"];
	events: EventSink;
	logger: Logger;
};

export type Admission = { room: Room; peer: Peer };

/**
 * A call the api ended is remembered this long: any call token for it that
 * is still valid (at most CALL_TOKEN_MAX_TTL_SECONDS, plus the verifier's
 * 30 s tolerance) must not open it again.
 */
export const ENDED_CALL_MEMORY_MS = (CALL_TOKEN_MAX_TTL_SECONDS + 30) * 1000;

export class RoomRegistry {
	#options: RoomRegistryOptions;
	#rooms = new Map<string, Room>();
	#creating = new Map<string, Promise<Room>>();
	#draining = false;
	#emptyWaiters: (() => void)[] = [];
	/** Calls the api ended, with when they may be forgotten (in the order they ended). */
	#ended = new Map<string, number>();

	static create(options: RoomRegistryOptions): RoomRegistry {
		return new RoomRegistry(options);
	}

	private constructor(options: RoomRegistryOptions) {
		this.#options = options;
	}

	get draining(): boolean {
		return this.#draining;
	}

	get size(): number {
		return this.#rooms.size;
	}

	rooms(): IterableIterator<Room> {
		return this.#rooms.values();
	}

	get(callId: string): Room | undefined {
		return this.#rooms.get(callId);
	}

	counts(): RoomCounts & { calls: number } {
		const total = { calls: this.#rooms.size, peers: 0, transports: 0, producers: 0, consumers: 0 };

		for (const room of this.#rooms.values()) {
			const c = room.counts();

			total.peers += c.peers;
			total.transports += c.transports;
			total.producers += c.producers;
			total.consumers += c.consumers;
		}

		return total;
	}

	/** Puts an authenticated socket into its call. Throws RtcError with a close code when refused. */
	async admit(claims: CallClaims, connection: PeerConnection): Promise<Admission> {
		if (this.#hasEnded(claims.callId)) {
			throw new RtcError("NOT_FOUND", "This call has ended.", RTC_CLOSE_CODES.CALL_ENDED);
		}
		for (let attempt = 0; attempt < 3; attempt++) {
			this.#checkOpen();

			const existing = this.#rooms.get(claims.callId);

			if (!existing?.hasPeer(claims.userId) && this.counts().peers >= this.#options.limits.maxPeers) {
				throw new RtcError(
					"SERVICE_UNAVAILABLE",
					"This media node is at capacity; ask the api to join again.",
					RTC_CLOSE_CODES.TRY_AGAIN_LATER,
				);
			}

			const room = existing ?? (await this.#roomFor(claims.callId));

			if (this.#draining && room.peerCount === 0) {
				// Created for this socket just as draining began: nobody else will close it.
				room.close("node-shutdown");
			}
			this.#checkOpen();
			if (room.closed) {
				// It closed between lookup and admission (its last peer just left): a fresh one.
				continue;
			}

			return { room, peer: room.admit(claims, connection) };
		}

		throw new RtcError(
			"SERVICE_UNAVAILABLE",
			"The call could not be opened; try again.",
			RTC_CLOSE_CODES.TRY_AGAIN_LATER,
		);
	}

	/**
	 * Ends a call (the api asked): peers get callEnded, and no token opens it
	 * again. False when the call is not here.
	 */
	end(callId: string): boolean {
		this.#ended.delete(callId);
		this.#ended.set(callId, Date.now() + ENDED_CALL_MEMORY_MS);
		const room = this.#rooms.get(callId);

		if (!room) {
			return false;
		}
		room.close("ended");

		return true;
	}

	#hasEnded(callId: string): boolean {
		const now = Date.now();
		for (const [id, until] of this.#ended) {
			if (until > now) break;
			this.#ended.delete(id);
		}
		return this.#ended.has(callId);
	}

	/** No new sockets from now on; peers of the current calls are told to move. */
	startDraining(deadline: Date, timeoutMs: number): void {
		this.#draining = true;
		for (const room of this.#rooms.values()) {
			room.notifyDraining(deadline, timeoutMs);
		}
	}

	/** Resolves when no call is left, or false after `timeoutMs`. */
	async waitUntilEmpty(timeoutMs: number): Promise<boolean> {
		if (this.#rooms.size === 0 && this.#creating.size === 0) {
			return true;
		}

		let timer: NodeJS.Timeout | undefined;
		const empty = new Promise<boolean>((resolve) => this.#emptyWaiters.push(() => resolve(true)));
		const timeout = new Promise<boolean>((resolve) => {
			timer = setTimeout(() => resolve(false), timeoutMs);
		});
		const result = await Promise.race([empty, timeout]);

		clearTimeout(timer);

		return result;
	}

	/** Ends every call. */
	closeAll(reason: "node-shutdown" | "media-failure"): void {
		for (const room of [...this.#rooms.values()]) {
			room.close(reason);
		}
	}

	#checkOpen(): void {
		if (this.#draining) {
			throw new RtcError(
				"DRAINING",
				"This media node is shutting down; ask the api to join again.",
				RTC_CLOSE_CODES.TRY_AGAIN_LATER,
			);
		}
	}

	async #roomFor(callId: string): Promise<Room> {
		const pending = this.#creating.get(callId);

		if (pending) {
			return await pending;
		}

		const creation = Room.create({
			callId,
			pool: this.#options.pool,
			rtc: this.#options.rtc,
			limits: this.#options.limits,
			events: this.#options.events,
			logger: this.#options.logger,
			onClose: (room) => this.#forget(room),
		});

		this.#creating.set(callId, creation);

		try {
			const room = await creation;

			this.#rooms.set(callId, room);

			return room;
		} catch (error) {
			if (error instanceof NoLiveWorkerError) {
				throw new RtcError(
					"SERVICE_UNAVAILABLE",
					"This media node has no working media worker; try again.",
					RTC_CLOSE_CODES.TRY_AGAIN_LATER,
				);
			}
			throw error;
		} finally {
			this.#creating.delete(callId);
			this.#notifyIfEmpty();
		}
	}

	#forget(room: Room): void {
		if (this.#rooms.get(room.callId) === room) {
			this.#rooms.delete(room.callId);
		}
		this.#notifyIfEmpty();
	}

	#notifyIfEmpty(): void {
		if (this.#rooms.size === 0 && this.#creating.size === 0) {
			for (const waiter of this.#emptyWaiters.splice(0)) {
				waiter();
			}
		}
	}
}
