// Base for the Durable Objects that hold WebSockets: hibernatable accept,
// authentication (pre-checked by the api, or a first `auth` frame), frame
// parsing, heartbeat and idle close. Subclasses implement the hooks.

import { DurableObject } from "cloudflare:workers";
import {
	APP_SUBPROTOCOL,
	BATCH_SUBPROTOCOL,
	type BatchableClientFrame,
	BEARER_SUBPROTOCOL_PREFIX,
	ClientFrame,
	MAX_BATCH_FRAMES,
	type PresenceState,
	type ServerFrame,
	type SingleServerFrame,
} from "@secureconnect/protocol";
import { and, inArray, isNull } from "drizzle-orm";
import { authenticate } from "../../api/src/auth/authenticate.ts";
import { loadConfig } from "../../api/src/config/config.ts";
import { type Database, openDatabase } from "../../api/src/db/client.ts";
import { sessions } from "../../api/src/db/schema/index.ts";
import type { Env } from "../../api/src/env.ts";
import { ApiError } from "../../api/src/lib/api-error.ts";
import { type Logger, parseLevel, rootLogger } from "../../api/src/lib/logger.ts";
import { recordSocket } from "../../api/src/lib/metrics.ts";
import { REQUEST_ID_HEADER } from "../../api/src/middleware/request-id/index.ts";
import { type RealtimeLimits, realtimeLimits } from "./limits.ts";
import { readPage, snapshotTables, type TablePage, writePage } from "./snapshot.ts";

/** Headers the api sets after it has authenticated the upgrade; never accepted from outside. */
export const USER_HEADER = "x-sc-user-id";
export const SESSION_HEADER = "x-sc-session-id";
export const PROTOCOL_HEADER = "x-sc-subprotocol";

export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_FORBIDDEN = 4003;
export const CLOSE_IDLE = 4008;
export const CLOSE_TOO_MANY = 4029;

/** Sockets whose session was revoked are closed within this long (the user channel: at once). */
export const SESSION_RECHECK_MS = 60_000;

/**
 * A socket's attachment is rewritten on activity at most this often: it only
 * feeds the idle check, which allows seconds of slack, and serializing it on
 * every frame costs more than the frame itself.
 */
const ATTACHMENT_REFRESH_MS = 5_000;

/**
 * A batch for one socket is closed at this many bytes and the next one
 * begun: well under the 1 MiB a WebSocket message may carry.
 */
const MAX_BATCH_BYTES = 256 * 1024;

const PING = '{"type":"ping"}';
const PONG = '{"type":"pong"}';

export interface SocketInfo {
	userId: string;
	sessionId: string;
	authed: boolean;
	connectedAt: number;
	/** Last frame from the client (ms); pings answered by the runtime count via their own timestamp. */
	lastActive: number;
	presence: "online" | "away";
	/** The id of the upgrade request (x-request-id from the api): in this socket's log lines and jobs. */
	requestId?: string;
	/** The client selected BATCH_SUBPROTOCOL: frames ready at once may share one `batch` frame. */
	batch?: boolean;
	/** Its close (or error) has been handled. */
	closed?: boolean;
}

export type Authed = SocketInfo & { authed: true };

/** A frame held back by SocketServer.batched: for one socket, or for every socket but `except`. */
interface Held {
	text: string;
	to?: WebSocket;
	except?: WebSocket | undefined;
}

export abstract class SocketServer extends DurableObject<Env> {
	protected readonly limits: RealtimeLimits;
	protected readonly log: Logger;
	/** Attachments read back since the object last woke: broadcasts must not deserialize each socket's. */
	#infos = new WeakMap<WebSocket, SocketInfo>();
	/** When each socket's attachment was last written with its lastActive. */
	#stored = new WeakMap<WebSocket, number>();
	#byUser: Map<string, Set<WebSocket>> | undefined;
	/** While set (see batched), frames wait here, serialized, to go out together. */
	#held: Held[] | undefined;
	/** Open sockets: the runtime's list is read once per wake (it costs a wrapper per socket), then counted here. */
	#openSockets: number | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.log = rootLogger.child({ service: "realtime" }, parseLevel(env.LOG_LEVEL));
		this.limits = realtimeLimits(env as unknown as Record<string, string | undefined>);
		// Heartbeats are answered without waking the object from hibernation.
		ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
	}

	/** May this user hold a socket here? */
	protected abstract isAllowed(userId: string): boolean;
	protected abstract onAuthenticated(ws: WebSocket, info: Authed): void | Promise<void>;
	protected abstract onFrame(ws: WebSocket, info: Authed, frame: BatchableClientFrame): void | Promise<void>;
	protected abstract onDisconnected(info: Authed): void | Promise<void>;
	/**
	 * Runs once the frames of one WebSocket message (one frame or a client
	 * batch) are handled: work they queued can be done together here.
	 */
	protected afterFrames(): void {}
	/**
	 * Extra checks against Postgres at each session recheck (every
	 * SESSION_RECHECK_MS while authenticated sockets are open), on its connection.
	 */
	protected onRecheck(_db: Database): void | Promise<void> {}
	/** Extra work at each alarm; returns when the next alarm is wanted (ms epoch), if at all. */
	protected onAlarm(): number | undefined | Promise<number | undefined> {
		return undefined;
	}

	info(ws: WebSocket): SocketInfo | undefined {
		const cached = this.#infos.get(ws);
		if (cached) return cached;
		const info = (ws.deserializeAttachment() as SocketInfo | null) ?? undefined;
		if (info) {
			this.#infos.set(ws, info);
			this.#stored.set(ws, info.lastActive);
		}
		return info;
	}

	protected setInfo(ws: WebSocket, info: SocketInfo): void {
		const previous = this.#infos.get(ws);
		ws.serializeAttachment(info);
		this.#infos.set(ws, info);
		this.#stored.set(ws, info.lastActive);
		if (!this.#byUser) return;
		if (previous) this.#byUser.get(previous.userId)?.delete(ws);
		if (info.authed) this.#byUser.set(info.userId, (this.#byUser.get(info.userId) ?? new Set()).add(ws));
	}

	/**
	 * Authenticated sockets by user: built from the runtime's list once per
	 * wake, then kept by setInfo, so a broadcast or a socket count costs no
	 * walk over every socket's attachment.
	 */
	#sockets(): Map<string, Set<WebSocket>> {
		if (!this.#byUser) {
			const byUser = new Map<string, Set<WebSocket>>();
			for (const ws of this.ctx.getWebSockets()) {
				const info = this.info(ws);
				if (info?.authed) byUser.set(info.userId, (byUser.get(info.userId) ?? new Set()).add(ws));
			}
			this.#byUser = byUser;
		}
		return this.#byUser;
	}

	protected authedSockets(userId?: string): Array<[WebSocket, Authed]> {
		const out: Array<[WebSocket, Authed]> = [];
		const byUser = this.#sockets();
		const groups = userId === undefined ? byUser.values() : [byUser.get(userId) ?? new Set<WebSocket>()];
		for (const sockets of groups) {
			for (const ws of sockets) {
				const info = this.info(ws);
				if (ws.readyState === WebSocket.CLOSED || !info?.authed) {
					sockets.delete(ws);
					continue;
				}
				out.push([ws, info as Authed]);
			}
		}
		return out;
	}

	/** A user's presence from their sockets here: online if any is, away if all are, offline without one. */
	protected presenceOf(userId: string): PresenceState {
		let state: PresenceState = "offline";
		for (const ws of this.#sockets().get(userId) ?? []) {
			const info = this.info(ws);
			if (ws.readyState === WebSocket.CLOSED || !info?.authed) continue;
			if (info.presence === "online") return "online";
			state = "away";
		}
		return state;
	}

	/** Sockets open here, authenticated or not. */
	protected socketCount(): number {
		this.#openSockets ??= this.ctx.getWebSockets().length;
		return this.#openSockets;
	}

	/** Users with at least one authenticated socket here. */
	protected onlineUsers(): Set<string> {
		const online = new Set<string>();
		for (const [userId, sockets] of this.#sockets()) if (sockets.size > 0) online.add(userId);
		return online;
	}

	protected sendFrame(ws: WebSocket, frame: SingleServerFrame): void {
		const text = JSON.stringify(frame);
		if (this.#held) this.#held.push({ text, to: ws });
		else this.#send(ws, text);
	}

	protected broadcast(frame: SingleServerFrame, except?: WebSocket): void {
		const text = JSON.stringify(frame);
		if (this.#held) {
			this.#held.push({ text, except });
			return;
		}
		for (const sockets of this.#sockets().values()) {
			for (const ws of sockets) if (ws !== except) this.#send(ws, text);
		}
	}

	/**
	 * Runs `work` (synchronous) with every frame it sends held back, then sends
	 * each socket its frames: one `batch` frame to sockets that selected
	 * BATCH_SUBPROTOCOL, one by one to the others. Order per socket is kept.
	 * If `work` throws, its frames are dropped.
	 */
	protected batched<T>(work: () => T): T {
		if (this.#held) return work();
		const held: Held[] = [];
		this.#held = held;
		let result: T;
		try {
			result = work();
		} finally {
			// Work that failed sends nothing: its frames may speak of writes that never happened.
			this.#held = undefined;
		}
		this.#release(held);
		return result;
	}

	/**
	 * Sends held frames. Every socket that no frame names (as its target or as
	 * a broadcast's exception) gets the same frames: those are grouped into
	 * batches once, not once per socket.
	 */
	#release(held: Held[]): void {
		if (held.length === 0) return;
		const own = new Map<WebSocket, string[]>();
		for (const frame of held) {
			const named = frame.to ?? frame.except;
			if (named && !own.has(named)) own.set(named, []);
		}
		const audience = new Set<WebSocket>();
		for (const ws of own.keys()) if (this.#inAudience(ws)) audience.add(ws);
		const shared: string[] = [];
		for (const frame of held) {
			if (frame.to) {
				own.get(frame.to)?.push(frame.text);
				continue;
			}
			shared.push(frame.text);
			for (const ws of audience) if (ws !== frame.except) own.get(ws)?.push(frame.text);
		}
		if (shared.length > 0) {
			let grouped: string[] | undefined;
			for (const sockets of this.#sockets().values()) {
				for (const ws of sockets) {
					if (own.has(ws)) continue;
					if (shared.length > 1 && this.info(ws)?.batch) {
						grouped ??= groupFrames(shared);
						for (const text of grouped) this.#send(ws, text);
					} else for (const text of shared) this.#send(ws, text);
				}
			}
		}
		for (const [ws, texts] of own) {
			const frames = texts.length > 1 && this.info(ws)?.batch ? groupFrames(texts) : texts;
			for (const text of frames) this.#send(ws, text);
		}
	}

	/** Does a broadcast reach this socket (an authenticated one in the socket index)? */
	#inAudience(ws: WebSocket): boolean {
		const info = this.info(ws);
		return Boolean(info?.authed && this.#sockets().get(info.userId)?.has(ws));
	}

	#send(ws: WebSocket, text: string): void {
		try {
			ws.send(text);
		} catch {
			// The socket is closing; its close handler cleans up.
		}
	}

	protected fail(
		ws: WebSocket,
		code: Extract<ServerFrame, { type: "error" }>["code"],
		message: string,
		clientId?: string,
	) {
		this.sendFrame(ws, { type: "error", code, message, ...(clientId !== undefined && { clientId }) });
	}

	protected closeUser(userId: string, code: number, reason: string): void {
		for (const [ws] of this.authedSockets(userId)) ws.close(code, reason);
	}

	override async fetch(request: Request): Promise<Response> {
		if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
			return new Response("expected a WebSocket upgrade", { status: 426 });
		}
		const userId = request.headers.get(USER_HEADER);
		const sessionId = request.headers.get(SESSION_HEADER);
		if (userId && !this.isAllowed(userId)) return new Response("not a member", { status: 403 });
		if (userId && this.authedSockets(userId).length >= this.limits.MAX_SOCKETS_PER_USER) {
			return new Response("too many sockets", { status: 429 });
		}
		const { 0: client, 1: server } = new WebSocketPair();
		this.ctx.acceptWebSocket(server);
		const now = Date.now();
		const protocol = request.headers.get(PROTOCOL_HEADER);
		const info: SocketInfo = {
			userId: userId ?? "",
			sessionId: sessionId ?? "",
			authed: Boolean(userId && sessionId),
			connectedAt: now,
			lastActive: now,
			presence: "online",
			requestId: request.headers.get(REQUEST_ID_HEADER) ?? crypto.randomUUID(),
			...(protocol === BATCH_SUBPROTOCOL && { batch: true }),
		};
		this.setInfo(server, info);
		// The runtime's list already holds the new socket when it is read for the first time.
		const sockets = this.#openSockets === undefined ? this.socketCount() : ++this.#openSockets;
		this.log.info("socket opened", { requestId: info.requestId, object: this.constructor.name, sockets });
		recordSocket(this.env, { object: this.constructor.name, change: "open", sockets });
		await this.#scheduleAlarm(
			now + (info.authed ? this.limits.IDLE_TIMEOUT_SECONDS : this.limits.AUTH_TIMEOUT_SECONDS) * 1000,
		);
		if (info.authed) await this.onAuthenticated(server, info as Authed);
		return new Response(null, {
			status: 101,
			webSocket: client,
			...(protocol && { headers: { "sec-websocket-protocol": protocol } }),
		});
	}

	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		const info = this.info(ws);
		if (!info) return;
		if (typeof message !== "string") return this.fail(ws, "BAD_FRAME", "Frames are JSON text.");
		if (message.length > this.limits.MAX_FRAME_BYTES) {
			return this.fail(ws, "TOO_LARGE", `Frames are limited to ${this.limits.MAX_FRAME_BYTES} bytes.`);
		}
		let parsed: ClientFrame;
		try {
			const result = ClientFrame.safeParse(JSON.parse(message));
			if (!result.success) {
				const issue = result.error.issues[0];
				return this.fail(
					ws,
					"BAD_FRAME",
					`Invalid frame: ${issue?.path.join(".") || "type"} ${issue?.message ?? ""}`.trim(),
				);
			}
			parsed = result.data;
		} catch {
			return this.fail(ws, "BAD_FRAME", "Frames are JSON text.");
		}
		info.lastActive = Date.now();
		if (!info.authed) {
			if (parsed.type !== "auth") {
				this.fail(ws, "UNAUTHORIZED", 'Authenticate first: send {type:"auth", token}.');
				return ws.close(CLOSE_UNAUTHORIZED, "unauthorized");
			}
			return this.#authenticateFrame(ws, info, parsed.token);
		}
		if (info.lastActive - (this.#stored.get(ws) ?? 0) >= ATTACHMENT_REFRESH_MS) this.setInfo(ws, info);
		if (parsed.type === "auth") return;
		try {
			if (parsed.type !== "batch") await this.#onFrame(ws, info as Authed, parsed);
			else for (const frame of parsed.frames) await this.#onFrame(ws, info as Authed, frame);
		} finally {
			this.afterFrames();
		}
	}

	async #onFrame(ws: WebSocket, info: Authed, frame: BatchableClientFrame): Promise<void> {
		if (frame.type === "ping") return this.sendFrame(ws, { type: "pong" });
		await this.onFrame(ws, info, frame);
	}

	async #authenticateFrame(ws: WebSocket, info: SocketInfo, token: string): Promise<void> {
		try {
			const config = await loadConfig(this.env);
			const handle = openDatabase(config.database);
			try {
				const principal = await authenticate(config, handle.db, token);
				if (!this.isAllowed(principal.userId)) {
					this.fail(ws, "FORBIDDEN", "Not a member.");
					return ws.close(CLOSE_FORBIDDEN, "forbidden");
				}
				if (this.authedSockets(principal.userId).length >= this.limits.MAX_SOCKETS_PER_USER) {
					this.fail(ws, "RATE_LIMITED", `At most ${this.limits.MAX_SOCKETS_PER_USER} sockets per user.`);
					return ws.close(CLOSE_TOO_MANY, "too many sockets");
				}
				const authed: Authed = { ...info, userId: principal.userId, sessionId: principal.sessionId, authed: true };
				this.setInfo(ws, authed);
				await this.#scheduleAlarm(Date.now() + Math.min(SESSION_RECHECK_MS, this.limits.IDLE_TIMEOUT_SECONDS * 1000));
				await this.onAuthenticated(ws, authed);
			} finally {
				void handle.close();
			}
		} catch (error) {
			if (error instanceof ApiError && error.status === 401) {
				this.fail(ws, "UNAUTHORIZED", error.message);
				return ws.close(CLOSE_UNAUTHORIZED, "unauthorized");
			}
			this.log.warn("socket authentication unavailable", { requestId: info.requestId, error });
			this.fail(ws, "SERVICE_UNAVAILABLE", "Authentication is unavailable; reconnect shortly.");
			ws.close(1013, "try again later");
		}
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		// Answer the client's Close frame, or it waits for its close timeout.
		try {
			ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
		} catch {
			// already closed
		}
		await this.#disconnected(ws);
	}

	override async webSocketError(ws: WebSocket): Promise<void> {
		await this.#disconnected(ws);
	}

	async #disconnected(ws: WebSocket): Promise<void> {
		const info = this.info(ws);
		if (info?.closed) return;
		// Mark it so socket lists taken from now on skip it.
		this.setInfo(ws, { ...(info as SocketInfo), authed: false, closed: true });
		// The runtime still lists the closing socket.
		const sockets = this.#openSockets === undefined ? Math.max(0, this.socketCount() - 1) : this.#openSockets - 1;
		this.#openSockets = sockets;
		if (info) {
			this.log.debug("socket closed", { requestId: info.requestId, durationMs: Date.now() - info.connectedAt });
			recordSocket(this.env, { object: this.constructor.name, change: "close", sockets });
		}
		if (info?.authed) await this.onDisconnected(info as Authed);
	}

	override async alarm(): Promise<void> {
		const now = Date.now();
		let next: number | undefined;
		for (const ws of this.ctx.getWebSockets()) {
			const info = this.info(ws);
			if (!info) continue;
			if (!info.authed) {
				if (now - info.connectedAt >= this.limits.AUTH_TIMEOUT_SECONDS * 1000)
					ws.close(CLOSE_UNAUTHORIZED, "no auth frame");
				else
					next = Math.min(next ?? Number.POSITIVE_INFINITY, info.connectedAt + this.limits.AUTH_TIMEOUT_SECONDS * 1000);
				continue;
			}
			const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
			const active = Math.max(info.lastActive, pinged);
			const deadline = active + this.limits.IDLE_TIMEOUT_SECONDS * 1000;
			if (deadline <= now) ws.close(CLOSE_IDLE, "idle");
			else next = Math.min(next ?? Number.POSITIVE_INFINITY, deadline);
		}
		if (this.authedSockets().length > 0) {
			await this.#recheck();
			next = Math.min(next ?? Number.POSITIVE_INFINITY, now + SESSION_RECHECK_MS);
		}
		const wanted = await this.onAlarm();
		if (wanted !== undefined) next = Math.min(next ?? Number.POSITIVE_INFINITY, wanted);
		if (next !== undefined) await this.ctx.storage.setAlarm(Math.max(next, now + 1000));
	}

	/**
	 * Closes sockets whose session has ended, then runs onRecheck. If Postgres
	 * cannot answer, sockets stay and the check repeats.
	 */
	async #recheck(): Promise<void> {
		const sockets = this.authedSockets();
		const ids = [...new Set(sockets.map(([, info]) => info.sessionId))];
		try {
			const config = await loadConfig(this.env);
			const handle = openDatabase(config.database);
			try {
				const live = await handle.db
					.select({ id: sessions.id })
					.from(sessions)
					.where(and(inArray(sessions.id, ids), isNull(sessions.revokedAt)));
				const alive = new Set(live.map((r) => r.id));
				for (const [ws, info] of sockets) if (!alive.has(info.sessionId)) this.#endSession(ws);
				await this.onRecheck(handle.db);
			} finally {
				void handle.close();
			}
		} catch (error) {
			this.log.warn("session recheck unavailable", { error });
		}
	}

	/**
	 * An error frame first: a client sees it at once, while the runtime may
	 * keep the TCP connection of a socket it closed open for seconds after the
	 * closing handshake (workerd here: about 10 s), which delays a client's
	 * `close` event.
	 */
	#endSession(ws: WebSocket): void {
		this.fail(ws, "UNAUTHORIZED", "The session has ended; sign in again.");
		ws.close(CLOSE_UNAUTHORIZED, "session ended");
	}

	/** Closes the sockets of the given sessions at once. */
	async closeSessions(sessionIds: string[]): Promise<void> {
		const ended = new Set(sessionIds);
		for (const [ws, info] of this.authedSockets()) if (ended.has(info.sessionId)) this.#endSession(ws);
	}

	// ------------------------------------------------- backup and restore (admin api only)

	/** The object's own SQLite tables. */
	async snapshotTables(): Promise<string[]> {
		return snapshotTables(this.ctx.storage.sql);
	}

	async exportPage(table: string, after: number): Promise<TablePage> {
		return readPage(this.ctx.storage.sql, table, after);
	}

	/** Writes a page of a backup; the first page of each table replaces its rows. */
	async importPage(page: TablePage, first: boolean): Promise<number> {
		return writePage(this.ctx.storage.sql, page, first);
	}

	/** Ends a restore: the object restarts (reloading its state from storage) and its alarm runs soon. */
	async finishImport(): Promise<void> {
		await this.ctx.storage.setAlarm(Date.now() + 1000);
		this.ctx.abort("restored from a backup");
	}

	/** Sets the alarm to `at` unless one is already due sooner. */
	protected async scheduleAlarm(at: number): Promise<void> {
		await this.#scheduleAlarm(at);
	}

	async #scheduleAlarm(at: number): Promise<void> {
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > at) await this.ctx.storage.setAlarm(at);
	}
}

/** Serialized frames as `batch` frames of at most MAX_BATCH_FRAMES frames and about MAX_BATCH_BYTES. */
function groupFrames(texts: string[]): string[] {
	const out: string[] = [];
	let group: string[] = [];
	let bytes = 0;
	const emit = () => {
		if (group.length === 0) return;
		out.push(group.length === 1 ? (group[0] as string) : `{"type":"batch","frames":[${group.join(",")}]}`);
		group = [];
		bytes = 0;
	};
	for (const text of texts) {
		if (group.length === MAX_BATCH_FRAMES || (group.length > 0 && bytes + text.length > MAX_BATCH_BYTES)) emit();
		group.push(text);
		bytes += text.length;
	}
	emit();
	return out;
}

/** Reads `bearer.<token>` from Sec-WebSocket-Protocol; returns the protocol the server should select. */
export function tokenFromProtocols(header: string | null): { token: string | undefined; selected: string | undefined } {
	const offered = (header ?? "")
		.split(",")
		.map((p) => p.trim())
		.filter(Boolean);
	const bearer = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
	const app = offered.find((p) => p === BATCH_SUBPROTOCOL) ?? offered.find((p) => p === APP_SUBPROTOCOL);
	return { token: bearer?.slice(BEARER_SUBPROTOCOL_PREFIX.length), selected: app ?? bearer };
}
