// The conversation's ordered message log in the object's own SQLite.
import type { Message } from "@secureconnect/protocol";

interface Row extends Record<string, SqlStorageValue> {
	seq: number;
	id: string;
	sender_id: string;
	sender_device_id: string | null;
	client_id: string;
	ciphertext: string;
	sent_at: number;
	kind: string;
	ref_seq: number | null;
	deleted: number;
	edited_at: number | null;
}

export interface NewEntry {
	id: string;
	senderId: string;
	senderDeviceId: string | null;
	clientId: string;
	ciphertext: string;
	kind: Message["kind"];
	refSeq: number | null;
}

function toMessage(row: Row): Message {
	return {
		seq: row.seq,
		id: row.id,
		senderId: row.sender_id as Message["senderId"],
		senderDeviceId: row.sender_device_id as Message["senderDeviceId"],
		clientId: row.client_id,
		ciphertext: row.ciphertext,
		sentAt: new Date(row.sent_at).toISOString(),
		kind: row.kind as Message["kind"],
		refSeq: row.ref_seq,
		deleted: row.deleted === 1,
		editedAt: row.edited_at === null ? null : new Date(row.edited_at).toISOString(),
	};
}

const COLUMNS = "seq, id, sender_id, sender_device_id, client_id, ciphertext, sent_at, kind, ref_seq";
/**
 * Many rows in one statement. A statement takes at most 100 parameters here,
 * so the rows travel as one JSON array of arrays in COLUMNS order.
 */
const INSERT_ROWS = `INSERT INTO messages (${COLUMNS}) SELECT ${COLUMNS.split(", ")
	.map((_, i) => `value ->> ${i}`)
	.join(", ")} FROM json_each(?)`;

interface Batch {
	/** (sender, clientId) pairs already stored. */
	known: Set<string>;
	/** Numbered, not yet written (with sentAt as stored: ms). */
	pending: Array<{ message: Message; sentAt: number }>;
	byKey: Map<string, Message>;
}

const keyOf = (senderId: string, clientId: string) => `${senderId}\u0000${clientId}`;

export class MessageLog {
	readonly #sql: SqlStorage;
	#lastSeq: number;
	/**
	 * Inside a batch (beginBatch … endBatch): new messages are numbered at once
	 * and written together at the end, one statement for many rows instead of
	 * one per message (the statement, not the row, was most of a send's cost).
	 */
	#batch: Batch | undefined;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
		sql.exec(`CREATE TABLE IF NOT EXISTS messages (
			seq INTEGER PRIMARY KEY,
			id TEXT NOT NULL,
			sender_id TEXT NOT NULL,
			sender_device_id TEXT,
			client_id TEXT NOT NULL,
			ciphertext TEXT NOT NULL,
			sent_at INTEGER NOT NULL,
			kind TEXT NOT NULL,
			ref_seq INTEGER,
			deleted INTEGER NOT NULL DEFAULT 0,
			edited_at INTEGER,
			UNIQUE (sender_id, client_id)
		)`);
		sql.exec("CREATE INDEX IF NOT EXISTS messages_sent_at ON messages (sent_at)");
		this.#lastSeq = this.#storedLastSeq();
	}

	get lastSeq(): number {
		return this.#lastSeq;
	}

	/**
	 * Starts a batch for these (sender, clientId) pairs: which of them are
	 * stored already is read now, in a few statements, so appends need none.
	 */
	beginBatch(pairs: Array<{ senderId: string; clientId: string }>): void {
		this.flush();
		const known = new Set<string>();
		const bySender = new Map<string, string[]>();
		for (const { senderId, clientId } of pairs) {
			const clientIds = bySender.get(senderId);
			if (clientIds) clientIds.push(clientId);
			else bySender.set(senderId, [clientId]);
		}
		// As in INSERT_ROWS, the list travels as one JSON parameter.
		for (const [senderId, clientIds] of bySender) {
			const rows = this.#sql.exec<{ client_id: string }>(
				"SELECT client_id FROM messages WHERE sender_id = ? AND client_id IN (SELECT value FROM json_each(?))",
				senderId,
				JSON.stringify(clientIds),
			);
			for (const row of rows) known.add(keyOf(senderId, row.client_id));
		}
		this.#batch = { known, pending: [], byKey: new Map() };
	}

	/** Ends a batch: its new messages are written. */
	endBatch(): void {
		this.flush();
		this.#batch = undefined;
	}

	/** Writes the batch's pending messages (before anything reads or changes the table). */
	flush(): void {
		const batch = this.#batch;
		if (!batch || batch.pending.length === 0) return;
		const pending = batch.pending;
		batch.pending = [];
		const rows = pending.map(({ message: m, sentAt }) => [
			m.seq,
			m.id,
			m.senderId,
			m.senderDeviceId,
			m.clientId,
			m.ciphertext,
			sentAt,
			m.kind,
			m.refSeq,
		]);
		try {
			this.#sql.exec(INSERT_ROWS, JSON.stringify(rows));
		} catch (error) {
			// Nothing numbered since the last write may be announced: start again from what is stored.
			this.#batch = undefined;
			this.#lastSeq = this.#storedLastSeq();
			throw error;
		}
	}

	#storedLastSeq(): number {
		return Number(this.#sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM messages").one().s ?? 0);
	}

	byClientId(senderId: string, clientId: string): Message | undefined {
		const pending = this.#batch?.byKey.get(keyOf(senderId, clientId));
		if (pending) return pending;
		const row = this.#sql
			.exec<Row>("SELECT * FROM messages WHERE sender_id = ? AND client_id = ?", senderId, clientId)
			.toArray()[0];
		return row ? toMessage(row) : undefined;
	}

	get(seq: number): Message | undefined {
		this.flush();
		const row = this.#sql.exec<Row>("SELECT * FROM messages WHERE seq = ?", seq).toArray()[0];
		return row ? toMessage(row) : undefined;
	}

	/**
	 * Appends with the next sequence number; an edit or delete also updates the
	 * message it refers to. Undefined when the sender already used this clientId.
	 */
	append(entry: NewEntry, now = Date.now()): Message | undefined {
		const batch = this.#batch;
		if (batch && entry.kind === "message") return this.#appendToBatch(batch, entry, now);
		this.flush();
		const seq = this.#lastSeq + 1;
		const inserted = this.#sql.exec(
			`INSERT INTO messages (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender_id, client_id) DO NOTHING`,
			seq,
			entry.id,
			entry.senderId,
			entry.senderDeviceId,
			entry.clientId,
			entry.ciphertext,
			now,
			entry.kind,
			entry.refSeq,
		).rowsWritten;
		if (inserted === 0) return undefined;
		if (entry.kind === "edit" && entry.refSeq !== null) {
			this.#sql.exec(
				"UPDATE messages SET ciphertext = ?, edited_at = ? WHERE seq = ?",
				entry.ciphertext,
				now,
				entry.refSeq,
			);
		}
		if (entry.kind === "delete" && entry.refSeq !== null) {
			this.#sql.exec("UPDATE messages SET ciphertext = '', deleted = 1 WHERE seq = ?", entry.refSeq);
		}
		this.#lastSeq = seq;
		const message = this.#message(seq, entry, now);
		if (batch) batch.known.add(keyOf(entry.senderId, entry.clientId));
		return message;
	}

	#appendToBatch(batch: Batch, entry: NewEntry, now: number): Message | undefined {
		const key = keyOf(entry.senderId, entry.clientId);
		if (batch.known.has(key) || batch.byKey.has(key)) return undefined;
		const message = this.#message(this.#lastSeq + 1, entry, now);
		this.#lastSeq = message.seq;
		batch.pending.push({ message, sentAt: now });
		batch.byKey.set(key, message);
		return message;
	}

	/** The last sentAt formatted: a batch's messages share one clock reading, and formatting it is not free. */
	#sentAt = { ms: Number.NaN, iso: "" };

	#iso(ms: number): string {
		if (this.#sentAt.ms !== ms) this.#sentAt = { ms, iso: new Date(ms).toISOString() };
		return this.#sentAt.iso;
	}

	#message(seq: number, entry: NewEntry, now: number): Message {
		return {
			seq,
			id: entry.id,
			senderId: entry.senderId as Message["senderId"],
			senderDeviceId: entry.senderDeviceId as Message["senderDeviceId"],
			clientId: entry.clientId,
			ciphertext: entry.ciphertext,
			sentAt: this.#iso(now),
			kind: entry.kind,
			refSeq: entry.refSeq,
			deleted: false,
			editedAt: null,
		};
	}

	/** Messages with seq > after, in order. */
	range(after: number, limit: number): { messages: Message[]; hasMore: boolean } {
		this.flush();
		const rows = this.#sql
			.exec<Row>("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", after, limit + 1)
			.toArray();
		return { messages: rows.slice(0, limit).map(toMessage), hasMore: rows.length > limit };
	}

	/** Disappearing messages: wipe content older than the cutoff, keeping tombstones so seqs stay contiguous. */
	expire(before: number): number {
		this.flush();
		return this.#sql.exec(
			"UPDATE messages SET ciphertext = '', deleted = 1 WHERE sent_at < ? AND (deleted = 0 OR ciphertext <> '')",
			before,
		).rowsWritten;
	}

	oldestLiveSentAt(): number | undefined {
		const row = this.#sql
			.exec<{ t: number | null }>("SELECT min(sent_at) AS t FROM messages WHERE deleted = 0 AND kind = 'message'")
			.one();
		return row.t ?? undefined;
	}
}
