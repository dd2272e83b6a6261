// Tells the members' user channels that a conversation has new messages,
// coalescing a busy conversation's messages into few calls per member.

/** A member not connected to the room hears of new messages this often at most (the first at once). */
export const ANNOUNCE_INTERVAL_MS = 100;
/**
 * A member connected to the room sees each message there; their channel
 * (other devices, the conversation list) hears of them this often at most.
 * In a busy deployment these reports are most of a room's work: at 1 s the
 * load test's 1,000 members (100 rooms at 1 msg/s) kept the runtime busy and
 * acks waited 0.7 s (p50); at 5 s, 17 ms.
 */
export const ONLINE_ANNOUNCE_INTERVAL_MS = 5_000;
/** Senders of the latest messages remembered, so a push can be skipped when the member blocks them all. */
export const RECENT_SENDERS = 256;
/** More distinct senders than this in one report: not worth checking for blocks. */
export const MAX_REPORTED_SENDERS = 16;

export interface Activity {
	lastSeq: number;
	/** The latest message the member sent since they were last told (their own messages count as read). */
	ownSeq: number | undefined;
	onlineHere: boolean;
	requestId: string | undefined;
	/**
	 * Who else sent the messages since the member was last told, when known:
	 * the push path skips a member who blocks all of them.
	 */
	senderIds: string[] | undefined;
}

export interface AnnouncerHost {
	members(): Iterable<string>;
	/** Members with a socket on the room right now. */
	online(): Set<string>;
	tell(userId: string, activity: Activity): Promise<void>;
}

export class ActivityAnnouncer {
	readonly #host: AnnouncerHost;
	#lastSeq = 0;
	#requestId: string | undefined;
	/**
	 * What each member's channel last heard, and when; `spread` (0.5–1.5)
	 * scales the member's interval, so members who heard together do not all
	 * come due together again.
	 */
	#told = new Map<string, { seq: number; at: number; spread: number }>();
	#ownSeq = new Map<string, number>();
	/** The latest messages' senders, oldest first, at most RECENT_SENDERS. */
	#recent: Array<{ seq: number; senderId: string }> = [];
	/** The highest seq whose sender was dropped from #recent. */
	#dropped = 0;
	#running: Promise<void> | undefined;
	#waiters: Array<{ seq: number; resolve: () => void }> = [];
	/** Ends the loop's sleep early: set while it sleeps. */
	#wake: (() => void) | undefined;

	constructor(host: AnnouncerHost) {
		this.#host = host;
	}

	/**
	 * A message was stored; settles once the channel of every member away from
	 * the room has heard of it (members in the room see it there; their
	 * channels hear at their own, slower pace).
	 */
	stored(seq: number, senderId: string, requestId: string | undefined): Promise<void> {
		this.#lastSeq = Math.max(this.#lastSeq, seq);
		this.#ownSeq.set(senderId, seq);
		this.#recent.push({ seq, senderId });
		if (this.#recent.length > RECENT_SENDERS) this.#dropped = this.#recent.shift()?.seq ?? this.#dropped;
		this.#requestId = requestId;
		const heard = new Promise<void>((resolve) => this.#waiters.push({ seq, resolve }));
		this.#running ??= this.#run();
		this.#wake?.();
		return heard;
	}

	/** A member left: nothing more is owed to them. */
	forget(userId: string): void {
		this.#told.delete(userId);
		this.#ownSeq.delete(userId);
	}

	async #run(): Promise<void> {
		try {
			for (;;) {
				const now = Date.now();
				const online = this.#host.online();
				const due: string[] = [];
				let next = Number.POSITIVE_INFINITY;
				for (const userId of this.#host.members()) {
					const told = this.#told.get(userId);
					if (told && told.seq >= this.#lastSeq) continue;
					const interval = online.has(userId) ? ONLINE_ANNOUNCE_INTERVAL_MS : ANNOUNCE_INTERVAL_MS;
					const at = told ? told.at + interval * told.spread : 0;
					if (at <= now) due.push(userId);
					else next = Math.min(next, at);
				}
				if (due.length === 0) {
					if (next === Number.POSITIVE_INFINITY) return;
					this.#settleWaiters();
					await this.#sleep(next - now);
					continue;
				}
				const lastSeq = this.#lastSeq;
				const requestId = this.#requestId;
				await Promise.allSettled(
					due.map((userId) => {
						const told = this.#told.get(userId);
						const spread = told?.spread ?? 0.5 + Math.random();
						this.#told.set(userId, { seq: lastSeq, at: now, spread });
						const ownSeq = this.#ownSeq.get(userId);
						this.#ownSeq.delete(userId);
						const senderIds = this.#sendersAfter(told?.seq ?? 0, lastSeq, userId);
						return this.#host.tell(userId, { lastSeq, ownSeq, onlineHere: online.has(userId), requestId, senderIds });
					}),
				);
				this.#settleWaiters();
			}
		} finally {
			this.#running = undefined;
			this.#settleWaiters(true);
		}
	}

	/** The senders (but `userId`) of messages in (afterSeq, toSeq]; undefined when not all are remembered. */
	#sendersAfter(afterSeq: number, toSeq: number, userId: string): string[] | undefined {
		if (afterSeq < this.#dropped) return undefined;
		const senders = new Set<string>();
		for (let i = this.#recent.length - 1; i >= 0; i--) {
			const r = this.#recent[i] as { seq: number; senderId: string };
			if (r.seq <= afterSeq) break;
			if (r.seq <= toSeq && r.senderId !== userId) senders.add(r.senderId);
			if (senders.size > MAX_REPORTED_SENDERS) return undefined;
		}
		return [...senders];
	}

	/** Waits until `ms` have passed or a new message comes in. */
	#sleep(ms: number): Promise<void> {
		return new Promise<void>((resolve) => {
			const done = () => {
				clearTimeout(timer);
				this.#wake = undefined;
				resolve();
			};
			const timer = setTimeout(done, ms);
			this.#wake = done;
		});
	}

	/** Resolves the waiters every member away from the room has heard of (all of them once nothing is left to tell). */
	#settleWaiters(all = false): void {
		const online = this.#host.online();
		let heard = Number.POSITIVE_INFINITY;
		for (const userId of this.#host.members()) {
			if (!online.has(userId)) heard = Math.min(heard, this.#told.get(userId)?.seq ?? 0);
		}
		this.#waiters = this.#waiters.filter((waiter) => {
			if (!all && waiter.seq > heard) return true;
			waiter.resolve();
			return false;
		});
	}
}
