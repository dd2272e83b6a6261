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

export class MessageLog {
	readonly #sql: SqlStorage;
	#lastSeq: number;

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
		this.#lastSeq = Number(sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM messages").one().s ?? 0);
	}

	get lastSeq(): number {
		return this.#lastSeq;
	}

	byClientId(senderId: string, clientId: string): Message | undefined {
		const row = this.#sql
			.exec<Row>("SELECT * FROM messages WHERE sender_id = ? AND client_id = ?", senderId, clientId)
			.toArray()[0];
		return row ? toMessage(row) : undefined;
	}

	get(seq: number): Message | undefined {
		const row = this.#sql.exec<Row>("SELECT * FROM messages WHERE seq = ?", seq).toArray()[0];
		return row ? toMessage(row) : undefined;
	}

	/**
	 * Appends with the next sequence number; an edit or delete also updates the
	 * message it refers to. Undefined when the sender already used this clientId.
	 */
	append(entry: NewEntry, now = Date.now()): Message | undefined {
		const seq = this.#lastSeq + 1;
		const inserted = this.#sql.exec(
			"INSERT INTO messages (seq, id, sender_id, sender_device_id, client_id, ciphertext, sent_at, kind, ref_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender_id, client_id) DO NOTHING",
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
		return {
			seq,
			id: entry.id,
			senderId: entry.senderId as Message["senderId"],
			senderDeviceId: entry.senderDeviceId as Message["senderDeviceId"],
			clientId: entry.clientId,
			ciphertext: entry.ciphertext,
			sentAt: new Date(now).toISOString(),
			kind: entry.kind,
			refSeq: entry.refSeq,
			deleted: false,
			editedAt: null,
		};
	}

	/** Messages with seq > after, in order. */
	range(after: number, limit: number): { messages: Message[]; hasMore: boolean } {
		const rows = this.#sql
			.exec<Row>("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", after, limit + 1)
			.toArray();
		return { messages: rows.slice(0, limit).map(toMessage), hasMore: rows.length > limit };
	}

	/** Disappearing messages: wipe content older than the cutoff, keeping tombstones so seqs stay contiguous. */
	expire(before: number): number {
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
