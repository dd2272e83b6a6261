import type {
	BatchableClientFrame,
	ConversationId,
	DeviceId,
	HistoryPage,
	Member,
	Message,
	PendingWelcome,
	PresenceState,
	SingleServerFrame,
	UserId,
	WelcomeEnvelope,
} from "@secureconnect/protocol";
import { HISTORY_PAGE_MAX } from "@secureconnect/protocol";
import { expireRinging } from "../../api/src/calls/service.ts";
import { loadConfig } from "../../api/src/config/config.ts";
import { membersOf } from "../../api/src/conversations/service.ts";
import { type Database, openDatabase } from "../../api/src/db/client.ts";
import { newId } from "../../api/src/lib/ids.ts";
import { recordMessage } from "../../api/src/lib/metrics.ts";
import { ActivityAnnouncer } from "./ActivityAnnouncer.ts";
import { base64Bytes } from "./limits.ts";
import { MessageLog } from "./message-log.ts";
import { isWelcome, type MlsFraming, readFraming } from "./mls-framing.ts";
import { presenceWindowMs } from "./presence-window.ts";
import { type Authed, CLOSE_FORBIDDEN, SocketServer } from "./SocketServer.ts";
import type { UserChannel } from "./UserChannel.ts";

export interface SendInput {
	senderId: string;
	senderDeviceId?: string | undefined;
	clientId: string;
	ciphertext: string;
	kind?: Message["kind"];
	refSeq?: number;
	welcome?: WelcomeEnvelope | undefined;
	/** The request (or socket upgrade) this came from, carried into the jobs it causes. */
	requestId?: string | undefined;
}

export type SendResult =
	| {
			ok: true;
			message: Message;
			duplicate: boolean;
			/** Settles once the members' user channels know of the message. */
			announced?: Promise<void>;
	  }
	| {
			ok: false;
			code: "TOO_LARGE" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "STALE_EPOCH" | "INVALID";
			message: string;
			currentEpoch?: number;
	  };

type Refusal = Extract<SendResult, { ok: false }>;

interface WelcomeRow extends Record<string, SqlStorageValue> {
	id: string;
	device_id: string;
	sender_id: string;
	message: string;
	epoch: number;
	created_at: number;
}

interface MemberRow extends Record<string, SqlStorageValue> {
	user_id: string;
	role: string;
	last_read: number;
	last_seen_at: number | null;
}

/** How often disappearing messages are swept at most. */
const RETENTION_SWEEP_MS = 60_000;

/**
 * One conversation: the single writer of its message order. Every message is
 * in SQLite before anyone hears of it (the runtime's output gate holds the ack
 * and the fan-out until the write is durable).
 */
export class ChatRoom extends SocketServer {
	#log: MessageLog | undefined;
	#members = new Map<string, { role: Member["role"]; lastRead: number; lastSeenAt: number | null }>();
	#conversationId: ConversationId | undefined;
	#retentionSeconds: number | null = null;
	/** A direct conversation where one side blocks the other: nothing more may be sent. */
	#frozen = false;
	/** The conversation's MLS group as the Delivery Service knows it: id and current epoch. */
	#mls: { groupId: string; epoch: number } | undefined;
	#lastTyping = new Map<string, number>();
	#sendBuckets = new WeakMap<WebSocket, { tokens: number; at: number }>();
	/** Sends of the WebSocket message being handled, stored once its frames are (see #queueSend). */
	#queuedSends: Array<{ ws: WebSocket; input: SendInput }> = [];
	#sendsThisMessage = 0;
	/** Whether single sends wait for a timer to be stored together, and whether one is set (see #queueSend). */
	#busy = false;
	#storeTimer = false;
	readonly #announcer = new ActivityAnnouncer({
		members: () => this.#members.keys(),
		online: () => this.onlineUsers(),
		tell: async (userId, activity) => {
			const conversationId = this.#conversationId;
			if (conversationId) await this.#channel(userId).activity({ userId, conversationId, ...activity });
		},
	});
	/** Members' user channel stubs (deriving an id hashes the name: not once per message). */
	#channels = new Map<string, DurableObjectStub<UserChannel>>();
	/** The presence each member was last announced with: only changes are broadcast. */
	#announcedPresence = new Map<string, PresenceState>();
	/** Members whose presence may have changed, each with the socket that already knows (see #announcePresence). */
	#presenceDue = new Map<string, WebSocket | undefined>();
	#presenceTimer = false;
	/** Bumped by every syncMembers: a repair read from Postgres before one must not undo it. */
	#membershipVersion = 0;
	/** Senders whose read position moved with their own messages this turn, written once at its end. */
	#unwrittenReads = new Set<string>();

	constructor(ctx: DurableObjectState, env: ConstructorParameters<typeof SocketServer>[1]) {
		super(ctx, env);
		ctx.blockConcurrencyWhile(async () => {
			const sql = ctx.storage.sql;
			sql.exec(`CREATE TABLE IF NOT EXISTS members (
				user_id TEXT PRIMARY KEY, role TEXT NOT NULL, last_read INTEGER NOT NULL DEFAULT 0, last_seen_at INTEGER)`);
			sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
			sql.exec("CREATE TABLE IF NOT EXISTS call_timeouts (call_id TEXT PRIMARY KEY, at INTEGER NOT NULL)");
			sql.exec(`CREATE TABLE IF NOT EXISTS welcomes (
				id TEXT PRIMARY KEY, device_id TEXT NOT NULL, sender_id TEXT NOT NULL, message TEXT NOT NULL,
				epoch INTEGER NOT NULL, created_at INTEGER NOT NULL)`);
			this.#log = new MessageLog(sql);
			for (const row of sql.exec<MemberRow>("SELECT * FROM members")) {
				this.#members.set(row.user_id, {
					role: row.role as Member["role"],
					lastRead: row.last_read,
					lastSeenAt: row.last_seen_at,
				});
			}
			for (const row of sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta")) {
				if (row.key === "conversationId") this.#conversationId = row.value as ConversationId;
				if (row.key === "retentionSeconds") this.#retentionSeconds = Number(row.value) || null;
				if (row.key === "frozen") this.#frozen = row.value === "1";
				if (row.key === "mlsGroupId") this.#mls = { groupId: row.value, epoch: this.#mls?.epoch ?? 0 };
				if (row.key === "mlsEpoch") this.#mls = { groupId: this.#mls?.groupId ?? "", epoch: Number(row.value) };
			}
		});
	}

	get #messages(): MessageLog {
		return this.#log as MessageLog;
	}

	// ---------------------------------------------------------------- RPC from the api

	/** Replaces the member list; sockets of users no longer in it are closed at once. */
	async syncMembers(
		conversationId: string,
		members: Member[],
		retentionSeconds: number | null,
		frozen = false,
	): Promise<void> {
		const sql = this.ctx.storage.sql;
		this.#frozen = frozen;
		sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('frozen', ?)", frozen ? "1" : "0");
		this.#conversationId = conversationId as ConversationId;
		this.#retentionSeconds = retentionSeconds;
		sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('conversationId', ?)", conversationId);
		sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('retentionSeconds', ?)", String(retentionSeconds ?? 0));
		this.#membershipVersion++;
		this.#applyMembers(members);
		if (retentionSeconds) await this.scheduleAlarm(Date.now() + RETENTION_SWEEP_MS);
	}

	/** Sockets of users no longer members are closed at once. */
	#applyMembers(members: readonly Member[]): void {
		const sql = this.ctx.storage.sql;
		const next = new Set(members.map((m) => m.userId as string));
		for (const userId of [...this.#members.keys()]) {
			if (next.has(userId)) continue;
			this.#members.delete(userId);
			this.#channels.delete(userId);
			this.#announcer.forget(userId);
			this.#announcedPresence.delete(userId);
			sql.exec("DELETE FROM members WHERE user_id = ?", userId);
			for (const [ws] of this.authedSockets(userId)) {
				this.fail(ws, "FORBIDDEN", "You are no longer a member of this conversation.");
				ws.close(CLOSE_FORBIDDEN, "removed");
			}
		}
		for (const m of members) {
			const existing = this.#members.get(m.userId);
			this.#members.set(m.userId, {
				role: m.role,
				lastRead: existing?.lastRead ?? 0,
				lastSeenAt: existing?.lastSeenAt ?? null,
			});
			sql.exec(
				"INSERT INTO members (user_id, role) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET role = excluded.role",
				m.userId,
				m.role,
			);
		}
	}

	/**
	 * The api tells the room of every membership change (syncMembers), but
	 * that call can fail after Postgres has committed the change. Each recheck
	 * compares the member list with Postgres, so a removal the room missed
	 * still closes the removed member's sockets, within SESSION_RECHECK_MS.
	 */
	protected override async onRecheck(db: Database): Promise<void> {
		const conversationId = this.#conversationId;
		if (!conversationId) return;
		const version = this.#membershipVersion;
		const members = await membersOf(db, conversationId);
		if (version !== this.#membershipVersion) return;
		const current =
			members.length === this.#members.size && members.every((m) => this.#members.get(m.userId)?.role === m.role);
		if (current) return;
		this.log.warn("member list repaired from Postgres", {
			conversationId,
			before: this.#members.size,
			after: members.length,
		});
		this.#applyMembers(members);
	}

	/** Over REST the answer waits for the user channels, so a conversation list read next is current. */
	async send(input: SendInput): Promise<SendResult> {
		const result = this.#append(input);
		this.#writeReads();
		if (!result.ok) return result;
		if (!result.duplicate) {
			recordMessage(this.env, { kind: result.message.kind, bytes: base64Bytes(result.message.ciphertext) });
		}
		const { announced, ...sent } = result;
		await announced;
		return sent;
	}

	async history(after: number, limit: number): Promise<HistoryPage> {
		return this.#messages.range(after, Math.min(limit, HISTORY_PAGE_MAX));
	}

	async markRead(userId: string, seq: number): Promise<void> {
		this.#markRead(userId, seq);
	}

	async state(): Promise<{ lastSeq: number; lastRead: Record<string, number> }> {
		return {
			lastSeq: this.#messages.lastSeq,
			lastRead: Object.fromEntries([...this.#members].map(([id, m]) => [id, m.lastRead])),
		};
	}

	/** Sends an event (a member's device added or removed) to every socket here. */
	async announce(frame: SingleServerFrame): Promise<void> {
		if (frame.type === "device" && this.#conversationId) frame = { ...frame, conversationId: this.#conversationId };
		this.broadcast(frame);
	}

	/** Readiness probe: answers once the object's own SQLite storage responds. */
	async ping(): Promise<{ ok: true }> {
		this.ctx.storage.sql.exec("SELECT 1");
		return { ok: true };
	}

	// ---------------------------------------------------------------- sockets

	protected isAllowed(userId: string): boolean {
		return this.#members.has(userId);
	}

	/** The newcomer's greeting (ready, then everyone's presence) goes out as one batch where it selected batches. */
	protected onAuthenticated(ws: WebSocket, info: Authed): void {
		this.batched(() => this.#greet(ws, info));
	}

	#greet(ws: WebSocket, info: Authed): void {
		this.sendFrame(ws, { type: "ready", userId: info.userId as UserId, lastSeq: this.#messages.lastSeq });
		// Tell the newcomer who is here (each member's sockets come from the socket index), then tell everyone.
		for (const userId of this.#members.keys()) {
			if (userId !== info.userId) this.sendFrame(ws, this.#presenceFrame(userId));
		}
		this.#announcePresence(info.userId, ws);
	}

	protected async onFrame(ws: WebSocket, info: Authed, frame: BatchableClientFrame): Promise<void> {
		switch (frame.type) {
			case "send":
			case "edit":
			case "delete": {
				if (!this.#takeSendToken(ws)) {
					return this.fail(
						ws,
						"RATE_LIMITED",
						`At most ${this.limits.SENDS_PER_SECOND} messages per second.`,
						frame.clientId,
					);
				}
				this.#queueSend(ws, {
					senderId: info.userId,
					senderDeviceId: frame.type === "send" ? frame.senderDeviceId : undefined,
					welcome: frame.type === "send" ? frame.welcome : undefined,
					clientId: frame.clientId,
					requestId: info.requestId,
					ciphertext: frame.type === "delete" ? "" : frame.ciphertext,
					kind: frame.type === "send" ? "message" : frame.type,
					...(frame.type !== "send" && { refSeq: frame.refSeq }),
				});
				return;
			}
			case "resume":
				return this.#resume(ws, frame.afterSeq);
			case "read":
				return this.#markRead(info.userId, frame.seq);
			case "typing": {
				const key = `${info.userId}:${frame.on}`;
				const now = Date.now();
				if (frame.on && now - (this.#lastTyping.get(key) ?? 0) < this.limits.TYPING_THROTTLE_MS) return;
				this.#lastTyping.set(key, now);
				return this.broadcast({ type: "typing", userId: info.userId as UserId, on: frame.on }, ws);
			}
			case "presence": {
				this.setInfo(ws, { ...info, presence: frame.state });
				return this.#announcePresence(info.userId, ws);
			}
		}
	}

	protected onDisconnected(info: Authed): void {
		const member = this.#members.get(info.userId);
		if (member && this.authedSockets(info.userId).length === 0) {
			member.lastSeenAt = Date.now();
			this.ctx.storage.sql.exec(
				"UPDATE members SET last_seen_at = ? WHERE user_id = ?",
				member.lastSeenAt,
				info.userId,
			);
		}
		this.#announcePresence(info.userId);
	}

	protected override async onAlarm(): Promise<number | undefined> {
		const now = Date.now();
		const calls = await this.#expireCalls(now);
		const retention = this.#expireMessages();
		if (calls === undefined) return retention;
		return retention === undefined ? calls : Math.min(calls, retention);
	}

	#expireMessages(): number | undefined {
		if (!this.#retentionSeconds) return undefined;
		const cutoff = Date.now() - this.#retentionSeconds * 1000;
		const expired = this.#messages.expire(cutoff);
		if (expired > 0) this.log.info("disappearing messages expired", { conversationId: this.#conversationId, expired });
		const oldest = this.#messages.oldestLiveSentAt();
		return oldest === undefined
			? undefined
			: Math.max(oldest + this.#retentionSeconds * 1000, Date.now() + RETENTION_SWEEP_MS);
	}

	// ---------------------------------------------------------------- internals

	/**
	 * Group commit. SQLite commits (with an fsync) on the object's thread after
	 * each turn that wrote, so storing each frame's message on its own would
	 * cost a commit per message; waiting for company costs latency (a timer
	 * waits ≥ 1 ms in workerd, longer than a commit). So: a client batch (up to
	 * 100 sends) is stored as soon as its frames are handled (afterFrames). A
	 * single send in a quiet room is stored at once too, and a timer then looks
	 * whether more arrived meanwhile; if so the room is busy, and its single
	 * sends wait for the timer to store them together, until a timer turn
	 * finds fewer than two. Each ack waits for its commit (the output gate
	 * holds it).
	 */
	#queueSend(ws: WebSocket, input: SendInput): void {
		this.#queuedSends.push({ ws, input });
		this.#sendsThisMessage++;
	}

	protected override afterFrames(): void {
		const sends = this.#sendsThisMessage;
		this.#sendsThisMessage = 0;
		if (sends === 0) return;
		if (sends > 1) {
			this.#storeQueuedSends();
			return;
		}
		if (this.#storeTimer) return;
		if (this.#busy) {
			this.#storeAfterTimer(2);
			return;
		}
		this.#storeQueuedSends();
		this.#storeAfterTimer(1);
	}

	/** At the next timer turn: stores what arrived meanwhile; the room stays busy if that was at least `busy` sends. */
	#storeAfterTimer(busy: number): void {
		this.#storeTimer = true;
		setTimeout(() => {
			this.#storeTimer = false;
			const waiting = this.#queuedSends.length;
			this.#busy = waiting >= busy;
			if (waiting > 0) this.#storeQueuedSends();
		}, 0);
	}

	/** Each socket gets the stored sends' acks and messages together (one frame where it selected batches). */
	#storeQueuedSends(): void {
		this.batched(() => this.#storeBatch());
	}

	#storeBatch(): void {
		const batch = this.#queuedSends;
		this.#queuedSends = [];
		const stored = new Map<Message["kind"], { count: number; bytes: number }>();
		let announced: Promise<void> | undefined;
		this.#messages.beginBatch(batch.map(({ input }) => input));
		try {
			for (const { ws, input } of batch) announced = this.#storeOne(ws, input, stored) ?? announced;
		} finally {
			this.#messages.endBatch();
		}
		this.#writeReads();
		if (announced) this.ctx.waitUntil(announced);
		for (const [kind, totals] of stored) recordMessage(this.env, { kind, ...totals });
	}

	/** Stores one socket send and answers it; returns the promise of its announcement when it is new. */
	#storeOne(
		ws: WebSocket,
		input: SendInput,
		stored: Map<Message["kind"], { count: number; bytes: number }>,
	): Promise<void> | undefined {
		const result = this.#append(input);
		if (result.ok) {
			this.sendFrame(ws, { type: "ack", clientId: input.clientId, seq: result.message.seq });
			if (result.duplicate) return undefined;
			const totals = stored.get(result.message.kind) ?? { count: 0, bytes: 0 };
			totals.count++;
			totals.bytes += base64Bytes(input.ciphertext);
			stored.set(result.message.kind, totals);
			// The announcer settles messages in seq order: waiting for the last one waits for all.
			return result.announced;
		}
		this.sendFrame(ws, {
			type: "error",
			code: result.code === "INVALID" ? "BAD_FRAME" : result.code,
			message: result.message,
			clientId: input.clientId,
			...(result.currentEpoch !== undefined && { currentEpoch: result.currentEpoch }),
		});
		return undefined;
	}

	#append(input: SendInput): SendResult {
		if (!this.#members.has(input.senderId)) return { ok: false, code: "FORBIDDEN", message: "Not a member." };
		if (this.#frozen)
			return { ok: false, code: "FORBIDDEN", message: "A block stands between the members of this conversation." };
		// A repeated clientId gets the stored message even where a first try would now be refused (an epoch
		// since moved on, a target since deleted); the lookup runs only then, the insert itself catches the rest.
		const checked = this.#check(input);
		if (!checked.ok) {
			const stored = this.#messages.byClientId(input.senderId, input.clientId);
			return stored ? { ok: true, message: stored, duplicate: true } : checked;
		}
		const { framing, kind } = checked;
		const message = this.#messages.append({
			id: newId("message"),
			senderId: input.senderId,
			senderDeviceId: input.senderDeviceId ?? null,
			clientId: input.clientId,
			ciphertext: input.ciphertext,
			kind,
			refSeq: input.refSeq ?? null,
		});
		if (!message) {
			const stored = this.#messages.byClientId(input.senderId, input.clientId) as Message;
			return { ok: true, message: stored, duplicate: true };
		}
		if (framing && framing.contentType === "commit") this.#advanceEpoch(framing);
		if (input.welcome && framing?.contentType === "commit") this.#routeWelcome(input.senderId, input.welcome);
		this.#markRead(input.senderId, message.seq, false);
		this.broadcast({ type: "message", message });
		const announced = this.#announcer.stored(message.seq, message.senderId, input.requestId);
		if (this.#retentionSeconds) void this.scheduleAlarm(Date.now() + this.#retentionSeconds * 1000);
		return { ok: true, message, duplicate: false, announced };
	}

	/** What may be refused before anything is stored: size, MLS framing and epoch, the target of an edit or delete. */
	#check(input: SendInput): Refusal | { ok: true; framing: MlsFraming | undefined; kind: Message["kind"] } {
		if (base64Bytes(input.ciphertext) > this.limits.MAX_CIPHERTEXT_BYTES) {
			return {
				ok: false,
				code: "TOO_LARGE",
				message: `Ciphertext is limited to ${this.limits.MAX_CIPHERTEXT_BYTES} bytes.`,
			};
		}
		const framing = readFraming(input.ciphertext);
		const ordered = this.#orderHandshake(framing, input);
		if (ordered) return ordered;
		const kind = input.kind ?? "message";
		if (kind !== "message") {
			const target = input.refSeq === undefined ? undefined : this.#messages.get(input.refSeq);
			if (target?.kind !== "message") return { ok: false, code: "NOT_FOUND", message: "No such message." };
			if (target.senderId !== input.senderId) {
				return { ok: false, code: "FORBIDDEN", message: "Only the sender may edit or delete a message." };
			}
			if (target.deleted) return { ok: false, code: "CONFLICT", message: "The message was deleted." };
		}
		return { ok: true, framing, kind };
	}

	/**
	 * Orders handshake messages: a commit or proposal must be for the current
	 * epoch; the first accepted commit for epoch N moves the group to N+1, so a
	 * later one for N (or older) is refused with the epoch to catch up from.
	 * Once a group exists, everything sent must be framed for it.
	 */
	#orderHandshake(framing: MlsFraming | undefined, input: SendInput): Refusal | undefined {
		const mls = this.#mls;
		if (!framing) {
			if (mls && (input.kind ?? "message") === "message") {
				return { ok: false, code: "INVALID", message: "This conversation is an MLS group: send MLS messages." };
			}
			return undefined;
		}
		if (mls && framing.groupId !== mls.groupId) {
			return { ok: false, code: "INVALID", message: "The message belongs to another MLS group." };
		}
		if (framing.contentType === "application") return undefined;
		const current = mls?.epoch ?? framing.epoch;
		if (framing.epoch !== current) {
			return {
				ok: false,
				code: "STALE_EPOCH",
				message: `The group is at epoch ${current}; fetch the newer commits and retry.`,
				currentEpoch: current,
			};
		}
		if (input.welcome && framing.contentType !== "commit") {
			return { ok: false, code: "INVALID", message: "A Welcome travels with the commit that adds its members." };
		}
		if (input.welcome && !isWelcome(input.welcome.message)) {
			return { ok: false, code: "INVALID", message: "welcome.message is not an MLS Welcome." };
		}
		return undefined;
	}

	#advanceEpoch(framing: MlsFraming): void {
		this.#mls = { groupId: framing.groupId, epoch: framing.epoch + 1 };
		const sql = this.ctx.storage.sql;
		sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('mlsGroupId', ?)", framing.groupId);
		sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('mlsEpoch', ?)", String(framing.epoch + 1));
	}

	/** Stores the Welcome for each invited device until fetched, and tells the members' user channels. */
	#routeWelcome(senderId: string, welcome: WelcomeEnvelope): void {
		const epoch = this.#mls?.epoch ?? 0;
		const conversationId = this.#conversationId;
		const now = Date.now();
		const ids: Array<[string, string]> = [];
		for (const deviceId of welcome.deviceIds) {
			const id = newId("welcome");
			this.ctx.storage.sql.exec(
				"INSERT INTO welcomes (id, device_id, sender_id, message, epoch, created_at) VALUES (?, ?, ?, ?, ?, ?)",
				id,
				deviceId,
				senderId,
				welcome.message,
				epoch,
				now,
			);
			ids.push([id, deviceId]);
		}
		if (!conversationId) return;
		for (const [welcomeId, deviceId] of ids) {
			const frame = { type: "welcome" as const, conversationId, welcomeId, deviceId: deviceId as DeviceId };
			this.broadcast(frame);
			this.ctx.waitUntil(
				Promise.allSettled(
					[...this.#members.keys()]
						.filter((userId) => userId !== senderId)
						.map((userId) => this.#channel(userId).notify(userId, frame)),
				),
			);
		}
	}

	/** Welcomes waiting for a device. */
	async welcomes(deviceId: string): Promise<PendingWelcome[]> {
		const conversationId = this.#conversationId ?? "";
		return this.ctx.storage.sql
			.exec<WelcomeRow>("SELECT * FROM welcomes WHERE device_id = ? ORDER BY created_at", deviceId)
			.toArray()
			.map((w) => ({
				id: w.id,
				conversationId,
				senderId: w.sender_id as UserId,
				message: w.message,
				epoch: w.epoch,
				createdAt: new Date(w.created_at).toISOString(),
			}));
	}

	/** The device has joined: its Welcome can go. */
	async deleteWelcome(deviceId: string, welcomeId: string): Promise<boolean> {
		return (
			this.ctx.storage.sql.exec("DELETE FROM welcomes WHERE id = ? AND device_id = ?", welcomeId, deviceId)
				.rowsWritten > 0
		);
	}

	/** Rings until `at`; then, if nobody answered, the call is missed (api logic, run here by the alarm). */
	async scheduleCallTimeout(callId: string, at: number): Promise<void> {
		this.ctx.storage.sql.exec("INSERT OR REPLACE INTO call_timeouts (call_id, at) VALUES (?, ?)", callId, at);
		await this.scheduleAlarm(at);
	}

	async #expireCalls(now: number): Promise<number | undefined> {
		const sql = this.ctx.storage.sql;
		const due = sql.exec<{ call_id: string }>("SELECT call_id FROM call_timeouts WHERE at <= ?", now).toArray();
		if (due.length > 0) {
			const config = await loadConfig(this.env);
			const handle = openDatabase(config.database);
			try {
				for (const { call_id } of due) {
					await expireRinging(this.env, handle.db, call_id);
					sql.exec("DELETE FROM call_timeouts WHERE call_id = ?", call_id);
				}
			} catch (error) {
				this.log.warn("call timeout check failed; will retry", { error });
				return now + 5_000;
			} finally {
				void handle.close();
			}
		}
		const next = sql.exec<{ at: number | null }>("SELECT min(at) AS at FROM call_timeouts").one().at;
		return next ?? undefined;
	}

	/** The MLS group's current epoch, for clients catching up. */
	async mlsState(): Promise<{ groupId: string | null; epoch: number }> {
		return { groupId: this.#mls?.groupId ?? null, epoch: this.#mls?.epoch ?? 0 };
	}

	/**
	 * A member read up to `seq`. Unannounced (a sender's own message) the row is
	 * written by #writeReads at the end of the turn: same commit, one write.
	 */
	#markRead(userId: string, seq: number, announce = true): void {
		const member = this.#members.get(userId);
		const bounded = Math.min(seq, this.#messages.lastSeq);
		if (!member || bounded <= member.lastRead) return;
		member.lastRead = bounded;
		if (!announce) {
			this.#unwrittenReads.add(userId);
			return;
		}
		this.ctx.storage.sql.exec("UPDATE members SET last_read = ? WHERE user_id = ?", bounded, userId);
		this.#unwrittenReads.delete(userId);
		this.broadcast({ type: "receipt", userId: userId as UserId, seq: bounded });
		const conversationId = this.#conversationId;
		if (conversationId) {
			this.ctx.waitUntil(
				this.#channel(userId)
					.read(userId, conversationId, bounded)
					.catch(() => {}),
			);
		}
	}

	#writeReads(): void {
		for (const userId of this.#unwrittenReads) {
			const member = this.#members.get(userId);
			if (member)
				this.ctx.storage.sql.exec("UPDATE members SET last_read = ? WHERE user_id = ?", member.lastRead, userId);
		}
		this.#unwrittenReads.clear();
	}

	/** A replay goes out in batches where the socket selected them. */
	#resume(ws: WebSocket, afterSeq: number): void {
		this.batched(() => this.#replay(ws, afterSeq));
	}

	#replay(ws: WebSocket, afterSeq: number): void {
		const from = afterSeq;
		let cursor = afterSeq;
		// Synchronous: no new message can interleave, so replay then live has no gap and no duplicate.
		for (;;) {
			const page = this.#messages.range(cursor, HISTORY_PAGE_MAX);
			for (const message of page.messages) this.sendFrame(ws, { type: "message", message });
			cursor = page.messages.at(-1)?.seq ?? cursor;
			if (!page.hasMore) break;
		}
		this.sendFrame(ws, { type: "resumed", fromSeq: from, toSeq: cursor });
	}

	/**
	 * Queues a member's presence for the next broadcast, presenceWindowMs
	 * away; `except` is the socket that caused the change and needs no frame.
	 */
	#announcePresence(userId: string, except?: WebSocket): void {
		const due = this.#presenceDue;
		due.set(userId, due.has(userId) && due.get(userId) !== except ? undefined : except);
		if (this.#presenceTimer) return;
		this.#presenceTimer = true;
		setTimeout(() => {
			this.#presenceTimer = false;
			this.batched(() => this.#broadcastPresence());
		}, presenceWindowMs(this.socketCount()));
	}

	/** Broadcasts each queued member's presence where it differs from what was last announced (a second tab changes nothing). */
	#broadcastPresence(): void {
		const due = this.#presenceDue;
		this.#presenceDue = new Map();
		for (const [userId, except] of due) {
			const frame = this.#presenceFrame(userId);
			if (this.#announcedPresence.get(userId) === frame.state) continue;
			this.#announcedPresence.set(userId, frame.state);
			this.broadcast(frame, except);
		}
	}

	#channel(userId: string): DurableObjectStub<UserChannel> {
		let stub = this.#channels.get(userId);
		if (!stub) {
			stub = this.env.USER_CHANNEL.get(this.env.USER_CHANNEL.idFromName(userId));
			this.#channels.set(userId, stub);
		}
		return stub;
	}

	#presenceFrame(userId: string) {
		const state = this.presenceOf(userId);
		const lastSeen = this.#members.get(userId)?.lastSeenAt;
		return {
			type: "presence" as const,
			userId: userId as UserId,
			state,
			lastSeenAt: state === "offline" && lastSeen ? new Date(lastSeen).toISOString() : null,
		};
	}

	#takeSendToken(ws: WebSocket): boolean {
		const now = Date.now();
		const bucket = this.#sendBuckets.get(ws) ?? { tokens: this.limits.SEND_BURST, at: now };
		bucket.tokens = Math.min(
			this.limits.SEND_BURST,
			bucket.tokens + ((now - bucket.at) / 1000) * this.limits.SENDS_PER_SECOND,
		);
		bucket.at = now;
		if (bucket.tokens < 1) {
			this.#sendBuckets.set(ws, bucket);
			return false;
		}
		bucket.tokens -= 1;
		this.#sendBuckets.set(ws, bucket);
		return true;
	}
}
