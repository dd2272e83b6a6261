// The delivery checks of the load test: every acknowledged message reaches
// every member exactly once and in order, intact.
//
// Per socket only the next expected seq is kept: a socket must get seq
// lastSeq+1, lastSeq+2, … (its `ready` frame's lastSeq first), so a gap, a
// duplicate or a reordering is seen at the frame that shows it. Per
// conversation one map seq ↔ clientId is built from acks and deliveries; every
// delivery and ack must agree with it (the same seq carries the same clientId
// at every member and in the ack; a clientId never gets two seqs). At the end
// every send must be acked, every seq up to the highest must belong to an acked
// send, and every socket must have reached that highest seq. Together: each
// acked clientId appears exactly once at each member, at the seq its ack named.
import { createHash } from "node:crypto";
import { percentile } from "../../bench/stats.ts";
import type { Message } from "../../protocol/src/index.ts";

/** The 64 "ciphertext" bytes of a message, derived from its clientId so every receiver can check them. The first two are 0xff so the room never takes them for an MLS message. */
export function ciphertextFor(clientId: string): string {
	const digest = createHash("sha256").update(clientId).digest();
	const more = createHash("sha256").update(digest).digest().subarray(0, 30);
	return Buffer.concat([Buffer.from([0xff, 0xff]), digest, more]).toString("base64");
}

interface Sent {
	member: number;
	senderId: string;
	at: number;
	acked: boolean;
	/** From the ack or the first delivery. */
	seq?: number;
}

interface Room {
	sent: Map<string, Sent>;
	/** clientId at each seq, from acks and deliveries. */
	bySeq: Map<number, string>;
	unacked: number;
	maxSeq: number;
}

interface Socket {
	ready: boolean;
	nextSeq: number;
	delivered: number;
}

export interface Figures {
	sent: number;
	acked: number;
	delivered: number;
	/** acked × members: what exactly-once delivery to every member means. */
	expectedDeliveries: number;
	ackP50: number;
	ackP99: number;
	ackMax: number;
	deliveryP50: number;
	deliveryP99: number;
	errors: number;
	violations: number;
}

const KEEP = 25;

export class DeliveryCheck {
	readonly #rooms: Room[];
	readonly #sockets: Socket[][];
	readonly #ackMs: number[] = [];
	readonly #deliveryMs: number[] = [];
	/** First few of each kind, and a count per kind. */
	readonly violations = new Map<string, { count: number; examples: string[] }>();
	readonly errors = new Map<string, { count: number; examples: string[] }>();
	#sent = 0;
	#acked = 0;
	#delivered = 0;
	/** When the last ack arrived (performance.now()). */
	lastAckAt = 0;

	readonly members: number;

	constructor(conversations: number, members: number) {
		this.members = members;
		this.#rooms = Array.from({ length: conversations }, () => ({
			sent: new Map(),
			bySeq: new Map(),
			unacked: 0,
			maxSeq: 0,
		}));
		this.#sockets = Array.from({ length: conversations }, () =>
			Array.from({ length: members }, () => ({ ready: false, nextSeq: 1, delivered: 0 })),
		);
	}

	violation(kind: string, detail: string): void {
		note(this.violations, kind, detail);
	}

	error(kind: string, detail: string): void {
		note(this.errors, kind, detail);
	}

	ready(c: number, m: number, lastSeq: number): void {
		const socket = this.#socket(c, m);
		socket.ready = true;
		socket.nextSeq = lastSeq + 1;
		if (lastSeq !== 0)
			this.violation("fresh conversation not empty", `conversation ${c}: ready says lastSeq ${lastSeq}`);
	}

	sent(c: number, m: number, senderId: string, clientId: string, at: number): void {
		const room = this.#room(c);
		room.sent.set(clientId, { member: m, senderId, at, acked: false });
		room.unacked++;
		this.#sent++;
	}

	acked(c: number, m: number, clientId: string, seq: number, at: number): void {
		const room = this.#room(c);
		const sent = room.sent.get(clientId);
		const where = `conversation ${c} member ${m}`;
		if (!sent || sent.member !== m)
			return void this.violation("ack for a message this socket did not send", `${where}: ${clientId}`);
		if (sent.acked) return void this.violation("acked twice", `${where}: ${clientId}`);
		if (sent.seq !== undefined && sent.seq !== seq) {
			return void this.violation(
				"clientId stored twice",
				`${where}: ${clientId} acked as seq ${seq}, delivered as seq ${sent.seq}`,
			);
		}
		if (!this.#place(c, room, seq, clientId)) return;
		sent.acked = true;
		sent.seq = seq;
		room.unacked--;
		this.#acked++;
		this.#ackMs.push(at - sent.at);
		this.lastAckAt = Math.max(this.lastAckAt, at);
	}

	delivered(c: number, m: number, message: Message, at: number): void {
		const socket = this.#socket(c, m);
		const room = this.#room(c);
		const where = `conversation ${c} member ${m}`;
		this.#delivered++;
		socket.delivered++;
		if (!socket.ready) this.violation("message before ready", `${where}: seq ${message.seq}`);
		if (message.seq !== socket.nextSeq) {
			this.violation(
				message.seq > socket.nextSeq ? "gap" : "duplicate or out of order",
				`${where}: expected seq ${socket.nextSeq}, got ${message.seq} (${message.clientId})`,
			);
		}
		socket.nextSeq = Math.max(socket.nextSeq, message.seq + 1);
		const sent = room.sent.get(message.clientId);
		if (!sent) return void this.violation("message nobody sent", `${where}: seq ${message.seq} ${message.clientId}`);
		if (message.senderId !== sent.senderId) {
			this.violation(
				"wrong sender",
				`${where}: ${message.clientId} from ${message.senderId}, sent by ${sent.senderId}`,
			);
		}
		if (message.ciphertext !== ciphertextFor(message.clientId)) {
			this.violation("ciphertext altered", `${where}: ${message.clientId}`);
		}
		if (this.#place(c, room, message.seq, message.clientId) === false) return;
		if (sent.seq !== undefined && sent.seq !== message.seq) {
			return void this.violation(
				"clientId stored twice",
				`${where}: ${message.clientId} delivered as seq ${message.seq}, acked or seen as seq ${sent.seq}`,
			);
		}
		sent.seq = message.seq;
		this.#deliveryMs.push(at - sent.at);
	}

	/** Every send acked and every socket caught up with the highest seq: nothing more is due. */
	settled(): boolean {
		return this.#rooms.every(
			(room, c) => room.unacked === 0 && (this.#sockets[c] ?? []).every((s) => s.nextSeq - 1 >= room.maxSeq),
		);
	}

	/** What is still missing (for a drain that times out). */
	outstanding(): string {
		let unacked = 0;
		let behind = 0;
		let missing = 0;
		for (const [c, room] of this.#rooms.entries()) {
			unacked += room.unacked;
			for (const socket of this.#sockets[c] ?? []) {
				if (socket.nextSeq - 1 < room.maxSeq) {
					behind++;
					missing += room.maxSeq - (socket.nextSeq - 1);
				}
			}
		}
		return `${unacked} sends unacknowledged; ${behind} sockets behind by ${missing} messages in all`;
	}

	/** The end-of-run checks; call once, after the drain. */
	finish(): void {
		for (const [c, room] of this.#rooms.entries()) {
			if (room.unacked > 0) {
				const missing = [...room.sent].filter(([, sent]) => !sent.acked).map(([id]) => id);
				this.error(
					"send never acknowledged",
					`conversation ${c}: ${missing.length} (${missing.slice(0, 3).join(", ")}…)`,
				);
			}
			for (let seq = 1; seq <= room.maxSeq; seq++) {
				const clientId = room.bySeq.get(seq);
				if (clientId === undefined) this.violation("seq nobody saw", `conversation ${c}: seq ${seq}`);
				else if (!room.sent.get(clientId)?.acked) {
					this.error("stored and delivered but never acknowledged", `conversation ${c}: seq ${seq} ${clientId}`);
				}
			}
			for (const [m, socket] of (this.#sockets[c] ?? []).entries()) {
				if (socket.nextSeq - 1 < room.maxSeq) {
					this.violation(
						"acked message not delivered",
						`conversation ${c} member ${m}: got up to seq ${socket.nextSeq - 1} of ${room.maxSeq}`,
					);
				}
			}
		}
	}

	/** Compares a conversation's log as the api serves it (GET …/messages) with what was acked and delivered. */
	compareStored(c: number, stored: Map<number, string>): void {
		const room = this.#room(c);
		if (stored.size !== room.maxSeq) {
			this.violation("stored log differs", `conversation ${c}: ${stored.size} stored, ${room.maxSeq} delivered`);
		}
		for (const [seq, clientId] of stored) {
			if (room.bySeq.get(seq) !== clientId) {
				this.violation(
					"stored log differs",
					`conversation ${c}: seq ${seq} is ${clientId} in the log, ${room.bySeq.get(seq)} live`,
				);
			}
		}
	}

	/** The running counts, cheaply (figures() sorts every latency). */
	counts(): { sent: number; acked: number; delivered: number; errors: number; violations: number } {
		const total = (kinds: Map<string, { count: number }>) => [...kinds.values()].reduce((n, k) => n + k.count, 0);
		return {
			sent: this.#sent,
			acked: this.#acked,
			delivered: this.#delivered,
			errors: total(this.errors),
			violations: total(this.violations),
		};
	}

	figures(): Figures {
		const ack = [...this.#ackMs].sort((a, b) => a - b);
		const delivery = [...this.#deliveryMs].sort((a, b) => a - b);
		return {
			...this.counts(),
			expectedDeliveries: this.#acked * this.members,
			ackP50: percentile(ack, 50),
			ackP99: percentile(ack, 99),
			ackMax: ack.at(-1) ?? Number.NaN,
			deliveryP50: percentile(delivery, 50),
			deliveryP99: percentile(delivery, 99),
		};
	}

	#room(c: number): Room {
		return this.#rooms[c] as Room;
	}

	#socket(c: number, m: number): Socket {
		return (this.#sockets[c] as Socket[])[m] as Socket;
	}

	/** Records clientId at seq; false (and a violation) when another clientId already holds it. */
	#place(c: number, room: Room, seq: number, clientId: string): boolean {
		const held = room.bySeq.get(seq);
		if (held !== undefined && held !== clientId) {
			this.violation("members disagree on a seq", `conversation ${c}: seq ${seq} is ${held} and ${clientId}`);
			return false;
		}
		room.bySeq.set(seq, clientId);
		room.maxSeq = Math.max(room.maxSeq, seq);
		return true;
	}
}

function note(kinds: Map<string, { count: number; examples: string[] }>, kind: string, detail: string): void {
	const entry = kinds.get(kind) ?? { count: 0, examples: [] };
	entry.count++;
	if (entry.examples.length < KEEP) entry.examples.push(detail);
	kinds.set(kind, entry);
}
