import type { BatchableClientFrame, ConversationId, SingleServerFrame, UserId } from "@secureconnect/protocol";
import type { NotificationJob } from "../../api/src/notifications/consumer.ts";
import { type Authed, SocketServer } from "./SocketServer.ts";

export interface ActivityInput {
	/** The channel's own user (channels are named by user id). */
	userId: string;
	conversationId: string;
	lastSeq: number;
	/** The latest of those messages this user sent (their own messages count as read). */
	ownSeq?: number | undefined;
	/** The user has a socket on that conversation right now. */
	onlineHere: boolean;
	/** The request that stored the message: the push job keeps it for tracing. */
	requestId?: string | undefined;
	/** Who else sent the messages reported, when known (see PushJob.senderIds). */
	senderIds?: string[] | undefined;
}

/** How long, on average, a changed cursor waits in memory before it is written (see #store). */
export const CURSOR_WRITE_MS = 2_000;

interface Cursor extends Record<string, SqlStorageValue> {
	conversation_id: string;
	last_seq: number;
	last_read: number;
}

/**
 * One per user: the single socket each device keeps for all of the user's
 * conversations. Conversation rooms report new messages here; the channel
 * keeps each conversation's last seq and read position (for unread counts)
 * and pushes `activity` frames, membership and friend events.
 */
export class UserChannel extends SocketServer {
	#userId: string | undefined;
	/** Cursors read since the object woke (a busy conversation reports many times a second). */
	#cursors = new Map<string, Cursor>();
	/** Conversations whose cursor changed since it was last written. */
	#unwritten = new Set<string>();

	constructor(ctx: DurableObjectState, env: ConstructorParameters<typeof SocketServer>[1]) {
		super(ctx, env);
		ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS cursors (
			conversation_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL DEFAULT 0, last_read INTEGER NOT NULL DEFAULT 0)`);
		ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
		this.#userId = ctx.storage.sql
			.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'userId'")
			.toArray()[0]?.value;
	}

	#remember(userId: string): void {
		if (this.#userId) return;
		this.#userId = userId;
		this.ctx.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('userId', ?)", userId);
	}

	#cursor(conversationId: string): Cursor {
		const cached = this.#cursors.get(conversationId);
		if (cached) return { ...cached };
		const stored = this.ctx.storage.sql
			.exec<Cursor>("SELECT * FROM cursors WHERE conversation_id = ?", conversationId)
			.toArray()[0] ?? {
			conversation_id: conversationId,
			last_seq: 0,
			last_read: 0,
		};
		this.#cursors.set(conversationId, stored);
		return { ...stored };
	}

	/**
	 * Cursors are answered from memory at once and written behind, all changed
	 * ones together, 1 to 3 s (CURSOR_WRITE_MS ± 50 %) after the first change:
	 * each write is a commit, and a busy conversation reports to every member
	 * several times a second. They are a cache (the room holds each member's
	 * read position): a crash loses at most that much of a lastSeq, which the
	 * conversation's next message restores.
	 */
	#store(cursor: Cursor): void {
		this.#cursors.set(cursor.conversation_id, cursor);
		this.#unwritten.add(cursor.conversation_id);
		// Jittered: a busy room reports to all its members at once, and their writes should not land together.
		if (this.#unwritten.size === 1) setTimeout(() => this.#writeCursors(), CURSOR_WRITE_MS * (0.5 + Math.random()));
	}

	#writeCursors(): void {
		for (const id of this.#unwritten) {
			const cursor = this.#cursors.get(id);
			if (!cursor) continue;
			this.ctx.storage.sql.exec(
				"INSERT OR REPLACE INTO cursors (conversation_id, last_seq, last_read) VALUES (?, ?, ?)",
				cursor.conversation_id,
				cursor.last_seq,
				cursor.last_read,
			);
		}
		this.#unwritten.clear();
	}

	// ---------------------------------------------------------------- RPC

	async activity(input: ActivityInput): Promise<void> {
		this.#remember(input.userId);
		const cursor = this.#cursor(input.conversationId);
		cursor.last_seq = Math.max(cursor.last_seq, input.lastSeq);
		if (input.ownSeq !== undefined) cursor.last_read = Math.max(cursor.last_read, input.ownSeq);
		// Only the user's own messages since the last report: nothing to push.
		const own = input.ownSeq === input.lastSeq;
		this.#store(cursor);
		this.broadcast({
			type: "activity",
			conversationId: input.conversationId as ConversationId,
			lastSeq: cursor.last_seq,
			unread: Math.max(0, cursor.last_seq - cursor.last_read),
		});
		if (!own && !input.onlineHere && this.authedSockets().length === 0 && this.#userId) {
			// Offline: a push carrying no content, only where to look.
			const job: NotificationJob = {
				kind: "push",
				userId: this.#userId,
				conversationId: input.conversationId,
				seq: input.lastSeq,
				requestId: input.requestId ?? crypto.randomUUID(),
				...(input.senderIds && { senderIds: input.senderIds }),
			};
			await this.env.NOTIFICATIONS.send(job).catch((error: unknown) =>
				this.log.warn("push enqueue failed", { requestId: job.requestId, error }),
			);
		}
	}

	async read(userId: string, conversationId: string, seq: number): Promise<void> {
		this.#remember(userId);
		const cursor = this.#cursor(conversationId);
		if (seq <= cursor.last_read) return;
		cursor.last_read = Math.min(seq, Math.max(seq, cursor.last_seq));
		cursor.last_seq = Math.max(cursor.last_seq, seq);
		this.#store(cursor);
		this.broadcast({
			type: "activity",
			conversationId: conversationId as ConversationId,
			lastSeq: cursor.last_seq,
			unread: Math.max(0, cursor.last_seq - cursor.last_read),
		});
	}

	/** lastSeq and unread for each conversation asked about. */
	async summaries(conversationIds: string[]): Promise<Record<string, { lastSeq: number; unread: number }>> {
		const out: Record<string, { lastSeq: number; unread: number }> = {};
		for (const id of conversationIds) {
			const c = this.#cursor(id);
			out[id] = { lastSeq: c.last_seq, unread: Math.max(0, c.last_seq - c.last_read) };
		}
		return out;
	}

	async notify(userId: string, frame: SingleServerFrame): Promise<void> {
		this.#remember(userId);
		this.broadcast(frame);
	}

	async forget(conversationId: string): Promise<void> {
		this.ctx.storage.sql.exec("DELETE FROM cursors WHERE conversation_id = ?", conversationId);
		this.#cursors.delete(conversationId);
		this.#unwritten.delete(conversationId);
	}

	// ---------------------------------------------------------------- sockets

	protected isAllowed(userId: string): boolean {
		return this.#userId === undefined || this.#userId === userId;
	}

	protected onAuthenticated(ws: WebSocket, info: Authed): void {
		this.#remember(info.userId);
		this.sendFrame(ws, { type: "ready", userId: info.userId as UserId, lastSeq: 0 });
	}

	protected onFrame(ws: WebSocket, _info: Authed, frame: BatchableClientFrame): void {
		if (frame.type !== "presence") this.fail(ws, "BAD_FRAME", `"${frame.type}" is sent on a conversation socket.`);
	}

	protected onDisconnected(): void {}
}
