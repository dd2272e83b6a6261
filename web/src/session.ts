// A signed-in tab: the SDK client (tokens, this device's MLS keys, in memory
// only), the user channel socket, one conversation socket per conversation
// this device can read, and what the screens show. Screens subscribe with
// `on()` and re-render the parts that changed.
import {
	APP_SUBPROTOCOL,
	BEARER_SUBPROTOCOL_PREFIX,
	type Block,
	type ConversationSummary,
	type FriendsList,
	type PresenceState,
	type PublicUser,
	ServerFrame,
	type User,
} from "@secureconnect/protocol";
import type { z } from "zod";
import type { ConversationSocket, ReceivedMessage } from "../../sdk/src/index.ts";
import { SecureConnectClient } from "../../sdk/src/index.ts";
import { announce } from "./dom.ts";

export type Friends = z.infer<typeof FriendsList>;
export type Blocked = z.infer<typeof Block>;

/** An attachment as it travels inside an end-to-end encrypted message (README "Message envelope"). */
export interface FileRef {
	type: "file";
	fileId: string;
	name: string;
	size: number;
	contentType: string;
	key: string;
	iv: string;
}

export interface ChatItem {
	seq: number;
	senderId: string;
	sentAt: string;
	mine: boolean;
	text?: string;
	file?: FileRef;
	undecryptable?: boolean;
}

export interface IncomingCall {
	callId: string;
	conversationId: string;
	callerId: string;
	media: "audio" | "video";
}

/** Conversation sockets held at once (the most recent conversations). */
const MAX_LIVE_CONVERSATIONS = 20;
const TYPING_TIMEOUT_MS = 6_000;
const CHANNEL_HEARTBEAT_MS = 25_000;

export class Chat {
	summary: ConversationSummary;
	readonly items: ChatItem[] = [];
	socket: ConversationSocket | undefined;
	readonly typing = new Map<string, ReturnType<typeof setTimeout>>();
	readonly presence = new Map<string, PresenceState>();
	/** Highest seq each other member has read (receipts). */
	readonly readBy = new Map<string, number>();
	/** Messages sent before this device joined the group arrived (and cannot be read here). */
	earlierUndecryptable = false;
	#readable = false;

	constructor(summary: ConversationSummary) {
		this.summary = summary;
	}

	get id(): string {
		return this.summary.id;
	}

	get lastRead(): number {
		return this.summary.lastSeq - this.summary.unread;
	}

	/** Readable messages from others this person has not read yet. */
	unread(joined: boolean): number {
		if (!joined) return this.summary.unread;
		return this.items.filter((i) => !i.mine && !i.undecryptable && i.seq > this.lastRead).length;
	}

	get lastActivity(): string {
		return this.items.at(-1)?.sentAt ?? this.summary.createdAt;
	}

	add(item: ChatItem): void {
		if (this.items.some((i) => i.seq === item.seq)) return;
		this.items.push(item);
		this.items.sort((a, b) => a.seq - b.seq);
	}

	/** Applies what the SDK decrypted (or could not). */
	receive(message: ReceivedMessage, me: string): ChatItem | undefined {
		const base = {
			seq: message.seq,
			senderId: message.senderId,
			sentAt: message.sentAt,
			mine: message.senderId === me,
		};
		if (message.kind === "undecryptable") {
			if (!this.#readable) {
				this.earlierUndecryptable = true;
				return undefined;
			}
			const item = { ...base, undecryptable: true };
			this.add(item);
			return item;
		}
		this.#readable = true;
		if (message.kind !== "application") return undefined;
		const item: ChatItem = { ...base, ...parsePlaintext(message.text ?? "") };
		this.add(item);
		this.stopTyping(message.senderId);
		return item;
	}

	stopTyping(userId: string): void {
		clearTimeout(this.typing.get(userId));
		this.typing.delete(userId);
	}
}

function parsePlaintext(text: string): { text?: string; file?: FileRef } {
	if (text.startsWith("{")) {
		try {
			const value = JSON.parse(text) as Partial<FileRef>;
			if (
				value.type === "file" &&
				typeof value.fileId === "string" &&
				typeof value.key === "string" &&
				typeof value.iv === "string"
			) {
				return {
					file: {
						type: "file",
						fileId: value.fileId,
						name: String(value.name ?? "file"),
						size: Number(value.size ?? 0),
						contentType: String(value.contentType || "application/octet-stream"),
						key: value.key,
						iv: value.iv,
					},
				};
			}
		} catch {
			// Plain text that happens to start with a brace.
		}
	}
	return { text };
}

export function describeBrowser(): string {
	const ua = navigator.userAgent;
	const browser = /Edg\//.test(ua)
		? "Edge"
		: /Firefox\//.test(ua)
			? "Firefox"
			: /Chrom(e|ium)\//.test(ua)
				? "Chrome"
				: /Safari\//.test(ua)
					? "Safari"
					: "Browser";
	const os = /Android/.test(ua)
		? "Android"
		: /iPhone|iPad/.test(ua)
			? "iOS"
			: /Mac OS X/.test(ua)
				? "macOS"
				: /Windows/.test(ua)
					? "Windows"
					: /Linux/.test(ua)
						? "Linux"
						: "";
	return `${browser}${os ? ` on ${os}` : ""} (web)`;
}

type Topic = "chats" | "chat" | "friends" | "call" | "me" | "users" | "connection";
type Listener = (topic: Topic, id?: string) => void;

export class Session {
	readonly client: SecureConnectClient;
	me: User;
	readonly deviceId: string;
	readonly chats = new Map<string, Chat>();
	friends: Friends | undefined;
	blocks: Blocked[] | undefined;
	incomingCall: IncomingCall | undefined;
	/** The chat on screen (read receipts are sent for it while the tab is visible). */
	activeChatId: string | undefined;
	online = false;
	onEnded: ((reason: string) => void) | undefined;
	readonly #users = new Map<string, PublicUser>();
	readonly #pendingUsers = new Set<string>();
	readonly #joining = new Map<string, Promise<boolean>>();
	readonly #listeners = new Set<Listener>();
	#channel: WebSocket | undefined;
	#channelAttempt = 0;
	#heartbeat: ReturnType<typeof setInterval> | undefined;
	#tokenTimer: ReturnType<typeof setInterval> | undefined;
	#lastToken: string | undefined;
	#ended = false;

	private constructor(client: SecureConnectClient, me: User, deviceId: string) {
		this.client = client;
		this.me = me;
		this.deviceId = deviceId;
		this.#users.set(me.id, me);
	}

	/** Signs in, registers this browser tab as a new device and publishes its KeyPackages. */
	static async signIn(email: string, password: string): Promise<Session> {
		const client = await SecureConnectClient.create({ baseUrl: location.origin });
		const name = describeBrowser();
		const me = await client.login(email, password, name);
		try {
			const deviceId = await client.registerDevice(name);
			const session = new Session(client, me, deviceId);
			await session.#start();
			return session;
		} catch (error) {
			await client.logout().catch(() => {});
			throw error;
		}
	}

	on(listener: Listener): () => void {
		this.#listeners.add(listener);
		return () => this.#listeners.delete(listener);
	}

	emit(topic: Topic, id?: string): void {
		for (const listener of this.#listeners) listener(topic, id);
	}

	request<T>(method: string, path: string, body?: unknown): Promise<T> {
		return this.client.http.request<T>(method, path, body);
	}

	async #start(): Promise<void> {
		await this.#rememberToken();
		// Keys live in this tab only: when it goes away, so do its device and session.
		this.#tokenTimer = setInterval(() => void this.#rememberToken(), 60_000);
		addEventListener("pagehide", this.#onPageHide);
		document.addEventListener("visibilitychange", this.#onVisibility);
		this.#openChannel();
		await this.refreshChats();
		void this.refreshFriends().catch(() => {});
	}

	async #rememberToken(): Promise<void> {
		this.#lastToken = await this.client.accessToken().catch(() => this.#lastToken);
	}

	readonly #onPageHide = (): void => {
		if (this.#ended || !this.#lastToken) return;
		const headers = { authorization: `Bearer ${this.#lastToken}` };
		void fetch(`/v1/devices/${this.deviceId}`, { method: "DELETE", headers, keepalive: true }).catch(() => {});
		void fetch("/v1/auth/logout", { method: "POST", headers, keepalive: true }).catch(() => {});
	};

	readonly #onVisibility = (): void => {
		const state = document.visibilityState === "visible" ? "online" : "away";
		for (const chat of this.chats.values()) chat.socket?.sendFrame({ type: "presence", state });
		if (state === "online" && this.activeChatId) this.markRead(this.activeChatId);
	};

	// ------------------------------------------------------------ people

	/** A cached public profile; loads it (and emits "users") when unknown. */
	user(id: string): PublicUser | undefined {
		const known = this.#users.get(id);
		if (!known && !this.#pendingUsers.has(id)) {
			this.#pendingUsers.add(id);
			this.request<{ user: PublicUser }>("GET", `/v1/users/${id}`)
				.then(({ user }) => {
					this.#users.set(id, user);
					this.emit("users", id);
				})
				.catch(() => {});
		}
		return known;
	}

	name(id: string): string {
		if (id === this.me.id) return "You";
		return this.user(id)?.displayName ?? "Someone";
	}

	rememberUser(user: PublicUser): void {
		this.#users.set(user.id, user);
	}

	async refreshFriends(): Promise<void> {
		const [friends, { blocks }] = await Promise.all([
			this.request<Friends>("GET", "/v1/friends"),
			this.request<{ blocks: Blocked[] }>("GET", "/v1/blocks"),
		]);
		this.friends = friends;
		this.blocks = blocks;
		for (const f of friends.friends) this.rememberUser(f);
		for (const r of [...friends.incoming, ...friends.outgoing]) this.rememberUser(r.user);
		for (const b of blocks) this.rememberUser(b.user);
		this.emit("friends");
	}

	// ------------------------------------------------------------ conversations

	chatTitle(chat: Chat): string {
		if (chat.summary.title) return chat.summary.title;
		const others = chat.summary.members.filter((m) => m.userId !== this.me.id);
		if (others.length === 0) return "Just you";
		return others.map((m) => this.name(m.userId)).join(", ");
	}

	joined(chatId: string): boolean {
		return this.client.hasGroup(chatId);
	}

	sortedChats(): Chat[] {
		return [...this.chats.values()].sort((a, b) => b.lastActivity.localeCompare(a.lastActivity));
	}

	async refreshChats(): Promise<void> {
		const { conversations } = await this.request<{ conversations: ConversationSummary[] }>("GET", "/v1/conversations");
		const seen = new Set<string>();
		for (const summary of conversations) {
			seen.add(summary.id);
			const chat = this.chats.get(summary.id);
			if (chat) chat.summary = summary;
			else this.chats.set(summary.id, new Chat(summary));
		}
		for (const [id, chat] of this.chats) {
			if (!seen.has(id)) {
				chat.socket?.close();
				this.chats.delete(id);
			}
		}
		this.emit("chats");
		await Promise.all(conversations.map((c) => this.ensureJoined(c.id)));
		this.#connectLive();
	}

	/**
	 * Joins the conversation's MLS group from a pending Welcome for this device,
	 * if there is one. Attempts queue behind each other, so a Welcome announced
	 * while an earlier attempt was looking is still found.
	 */
	ensureJoined(chatId: string): Promise<boolean> {
		if (this.client.hasGroup(chatId)) return Promise.resolve(true);
		const previous = this.#joining.get(chatId) ?? Promise.resolve(false);
		const attempt = previous.then(
			async (ok) => ok || this.client.hasGroup(chatId) || this.client.acceptInvites(chatId).catch(() => false),
		);
		this.#joining.set(chatId, attempt);
		void attempt.then((ok) => {
			if (this.#joining.get(chatId) === attempt) this.#joining.delete(chatId);
			if (!ok) return;
			this.#connectLive();
			this.emit("chats");
			this.emit("chat", chatId);
		});
		return attempt;
	}

	/** Keeps a socket on each readable conversation (most recent first, up to the cap). */
	#connectLive(): void {
		const live = this.sortedChats()
			.filter((c) => this.client.hasGroup(c.id))
			.slice(0, MAX_LIVE_CONVERSATIONS);
		for (const chat of live) if (!chat.socket) this.#connect(chat);
	}

	#connect(chat: Chat): void {
		chat.socket = this.client.connect(
			chat.id,
			(message) => {
				const item = chat.receive(message, this.me.id);
				if (item && !item.mine && chat.id === this.activeChatId) this.markRead(chat.id);
				this.emit("chat", chat.id);
				this.emit("chats");
			},
			(frame) => {
				switch (frame.type) {
					case "typing": {
						if (frame.userId === this.me.id) return;
						chat.stopTyping(frame.userId);
						if (frame.on)
							chat.typing.set(
								frame.userId,
								setTimeout(() => {
									chat.typing.delete(frame.userId);
									this.emit("chat", chat.id);
								}, TYPING_TIMEOUT_MS),
							);
						break;
					}
					case "receipt":
						if (frame.userId !== this.me.id)
							chat.readBy.set(frame.userId, Math.max(frame.seq, chat.readBy.get(frame.userId) ?? 0));
						break;
					case "presence":
						chat.presence.set(frame.userId, frame.state);
						break;
					case "error":
						if (frame.code === "RATE_LIMITED") announce("Slow down: too many messages at once.");
						return;
					default:
						return;
				}
				this.emit("chat", chat.id);
				this.emit("chats");
			},
		);
	}

	/** Someone's presence as seen on any shared conversation. */
	presenceOf(userId: string): PresenceState {
		let best: PresenceState = "offline";
		for (const chat of this.chats.values()) {
			const state = chat.presence.get(userId);
			if (state === "online") return "online";
			if (state === "away") best = "away";
		}
		return best;
	}

	async startChat(userIds: string[], title?: string): Promise<string> {
		const want = new Set([...userIds, this.me.id]);
		for (const chat of this.sortedChats()) {
			const members = chat.summary.members.map((m) => m.userId);
			if (
				!chat.summary.title &&
				!title &&
				this.joined(chat.id) &&
				members.length === want.size &&
				members.every((m) => want.has(m))
			)
				return chat.id;
		}
		const id = await this.client.startConversation(userIds, title);
		await this.refreshChats();
		return id;
	}

	async sendText(chatId: string, text: string): Promise<void> {
		const chat = this.#chat(chatId);
		chat.socket?.sendFrame({ type: "typing", on: false });
		const seq = await this.client.send(chatId, text);
		chat.add({ seq, senderId: this.me.id, sentAt: new Date().toISOString(), mine: true, text });
		this.emit("chat", chatId);
		this.emit("chats");
	}

	async sendFileRef(chatId: string, file: FileRef): Promise<void> {
		const chat = this.#chat(chatId);
		const seq = await this.client.send(chatId, JSON.stringify(file));
		chat.add({ seq, senderId: this.me.id, sentAt: new Date().toISOString(), mine: true, file });
		this.emit("chat", chatId);
		this.emit("chats");
	}

	setTyping(chatId: string, on: boolean): void {
		this.chats.get(chatId)?.socket?.sendFrame({ type: "typing", on });
	}

	/** Marks everything received in the chat as read (when it is on screen and the tab is visible). */
	markRead(chatId: string): void {
		const chat = this.chats.get(chatId);
		if (!chat || document.visibilityState !== "visible") return;
		const seq = Math.max(chat.summary.lastSeq, chat.items.at(-1)?.seq ?? 0);
		if (seq <= chat.lastRead) return;
		chat.summary = { ...chat.summary, lastSeq: seq, unread: 0 };
		if (!chat.socket?.sendFrame({ type: "read", seq })) {
			void this.request("POST", `/v1/conversations/${chatId}/read`, { seq }).catch(() => {});
		}
		this.emit("chats");
	}

	#chat(chatId: string): Chat {
		const chat = this.chats.get(chatId);
		if (!chat) throw new Error("This conversation is gone.");
		return chat;
	}

	// ------------------------------------------------------------ user channel

	#openChannel(): void {
		if (this.#ended) return;
		void this.client.accessToken().then((token) => {
			if (this.#ended || !token) return;
			const url = `${location.origin.replace(/^http/, "ws")}/v1/ws`;
			const ws = new WebSocket(url, [APP_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`]);
			this.#channel = ws;
			ws.addEventListener("message", (event) => {
				const parsed = ServerFrame.safeParse(JSON.parse(String(event.data)));
				if (parsed.success) void this.#onChannelFrame(parsed.data);
			});
			ws.addEventListener("close", () => {
				if (this.#channel !== ws) return;
				clearInterval(this.#heartbeat);
				this.online = false;
				this.emit("connection");
				const delay = Math.min(15_000, 500 * 2 ** this.#channelAttempt++) * (0.5 + Math.random() / 2);
				setTimeout(() => this.#openChannel(), delay);
			});
			this.#heartbeat = setInterval(() => ws.send('{"type":"ping"}'), CHANNEL_HEARTBEAT_MS);
		});
	}

	async #onChannelFrame(frame: ServerFrame): Promise<void> {
		switch (frame.type) {
			case "ready": {
				const reconnect = this.#channelAttempt > 0;
				this.#channelAttempt = 0;
				this.online = true;
				this.emit("connection");
				if (reconnect) await this.refreshChats();
				return;
			}
			case "activity": {
				const chat = this.chats.get(frame.conversationId);
				if (!chat) return this.refreshChats();
				chat.summary = { ...chat.summary, lastSeq: frame.lastSeq, unread: frame.unread };
				return this.emit("chats");
			}
			case "membership":
				await this.refreshChats();
				if (frame.userId === this.me.id && frame.change === "added") await this.ensureJoined(frame.conversationId);
				return;
			case "welcome":
				if (frame.deviceId !== this.deviceId) return;
				if (!this.chats.has(frame.conversationId)) await this.refreshChats();
				await this.ensureJoined(frame.conversationId);
				return;
			case "friend":
				this.rememberUser(frame.user);
				await this.refreshFriends();
				// This user's own actions (from another device) come back too: nothing to announce.
				if (frame.by !== frame.userId) return;
				if (frame.change === "request") announce(`${this.name(frame.userId)} sent you a friend request.`);
				if (frame.change === "accepted") announce(`${this.name(frame.userId)} accepted your friend request.`);
				return;
			case "keys_low":
				if (frame.deviceId === this.deviceId) await this.client.topUpKeyPackages().catch(() => 0);
				return;
			case "device":
				if (frame.change === "removed" && frame.deviceId === this.deviceId) this.end("This device was removed.");
				return;
			case "call":
				if (frame.event === "ring" && frame.userId !== this.me.id) {
					this.incomingCall = {
						callId: frame.callId,
						conversationId: frame.conversationId,
						callerId: frame.userId,
						media: frame.media ?? "video",
					};
				} else if (
					this.incomingCall?.callId === frame.callId &&
					(frame.event === "ended" ||
						frame.event === "missed" ||
						(frame.event === "joined" && frame.userId === this.me.id))
				) {
					this.incomingCall = undefined;
				}
				this.#callListeners.forEach((l) => {
					l(frame);
				});
				return this.emit("call");
			default:
				return;
		}
	}

	readonly #callListeners = new Set<(frame: Extract<ServerFrame, { type: "call" }>) => void>();

	onCallEvent(listener: (frame: Extract<ServerFrame, { type: "call" }>) => void): () => void {
		this.#callListeners.add(listener);
		return () => this.#callListeners.delete(listener);
	}

	// ------------------------------------------------------------ ending

	/** Closes every socket and forgets the keys; the screens go back to sign-in. */
	end(reason: string): void {
		if (this.#ended) return;
		this.#ended = true;
		clearInterval(this.#heartbeat);
		clearInterval(this.#tokenTimer);
		removeEventListener("pagehide", this.#onPageHide);
		document.removeEventListener("visibilitychange", this.#onVisibility);
		const channel = this.#channel;
		this.#channel = undefined;
		channel?.close(1000, "signed out");
		for (const chat of this.chats.values()) chat.socket?.close();
		this.onEnded?.(reason);
	}

	/** Signs out: this device and its session are removed on the server too. */
	async signOut(): Promise<void> {
		await this.request("DELETE", `/v1/devices/${this.deviceId}`).catch(() => {});
		await this.client.logout().catch(() => {});
		this.end("You signed out.");
	}
}
