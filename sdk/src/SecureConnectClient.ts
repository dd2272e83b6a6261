// The SDK's one entry point: accounts and tokens, the device and its keys, and
// end-to-end encrypted conversations (MLS) over the api's REST and sockets.
import type {
	ClaimedKeyPackage,
	Conversation,
	HistoryPage,
	LoginResponse,
	Message,
	PendingWelcome,
	SingleServerFrame,
	User,
} from "@secureconnect/protocol";
import type { ClientState } from "ts-mls";
import { ConversationSocket, type SocketConnector } from "./ConversationSocket.ts";
import { utf8 } from "./encoding.ts";
import { type FetchLike, Http, SecureConnectError } from "./http.ts";
import { MlsDevice } from "./MlsDevice.ts";

/** Refresh the access token when less than this is left. */
export const REFRESH_MARGIN_MS = 60_000;
export const DEFAULT_KEY_PACKAGE_BATCH = 20;
export const MAX_COMMIT_ATTEMPTS = 5;

export interface ClientOptions {
	baseUrl: string;
	fetch?: FetchLike;
	/** Opens a WebSocket; defaults to the platform's WebSocket. */
	connect?: SocketConnector;
}

export interface ReceivedMessage {
	seq: number;
	senderId: string;
	senderDeviceId: string | null;
	clientId: string;
	sentAt: string;
	/** application: decrypted; handshake: a group change; undecryptable: from before this device joined, or damaged. */
	kind: "application" | "handshake" | "undecryptable";
	plaintext?: Uint8Array;
	text?: string;
}

interface Group {
	state: ClientState;
	lastSeq: number;
	/** Encrypt and decrypt each advance the state: run them one at a time, or a ratchet step is lost. */
	queue?: Promise<unknown>;
}

function serially<T>(group: Group, step: () => Promise<T>): Promise<T> {
	const run = (group.queue ?? Promise.resolve()).then(step, step);
	group.queue = run.catch(() => {});
	return run;
}

interface Tokens {
	accessToken: string;
	refreshToken: string;
	expiresAt: number;
}

export class SecureConnectClient {
	readonly #http: Http;
	readonly #options: ClientOptions;
	readonly #device: MlsDevice;
	readonly #groups = new Map<string, Group>();
	readonly #sent = new Set<string>();
	#tokens: Tokens | undefined;
	#refreshing: Promise<void> | undefined;
	#user: User | undefined;
	#deviceId: string | undefined;

	private constructor(options: ClientOptions, device: MlsDevice) {
		this.#options = options;
		this.#device = device;
		this.#http = new Http({
			baseUrl: options.baseUrl.replace(/\/$/, ""),
			fetch: options.fetch ?? ((input, init) => fetch(input, init)),
			token: () => this.accessToken(),
		});
	}

	static async create(options: ClientOptions): Promise<SecureConnectClient> {
		return new SecureConnectClient(options, await MlsDevice.create());
	}

	get user(): User | undefined {
		return this.#user;
	}

	get deviceId(): string | undefined {
		return this.#deviceId;
	}

	get http(): Http {
		return this.#http;
	}

	// ---------------------------------------------------------------- accounts

	async register(input: { email: string; password: string; handle: string; displayName: string }): Promise<User> {
		const { user } = await this.#http.request<{ user: User }>("POST", "/v1/auth/register", input, false);
		return user;
	}

	async login(email: string, password: string, deviceName = "SecureConnect SDK"): Promise<User> {
		const res = await this.#http.request<LoginResponse>(
			"POST",
			"/v1/auth/login",
			{ email, password, deviceName },
			false,
		);
		this.#tokens = {
			accessToken: res.accessToken,
			refreshToken: res.refreshToken,
			expiresAt: Date.now() + res.expiresIn * 1000,
		};
		this.#user = res.user;
		return res.user;
	}

	async logout(): Promise<void> {
		await this.#http.request("POST", "/v1/auth/logout");
		this.#tokens = undefined;
	}

	/** A valid access token, refreshed (once, however many callers ask) when about to expire. */
	async accessToken(): Promise<string | undefined> {
		const tokens = this.#tokens;
		if (!tokens) return undefined;
		if (tokens.expiresAt - Date.now() > REFRESH_MARGIN_MS) return tokens.accessToken;
		this.#refreshing ??= this.#refresh().finally(() => {
			this.#refreshing = undefined;
		});
		await this.#refreshing;
		return this.#tokens?.accessToken;
	}

	async #refresh(): Promise<void> {
		const current = this.#tokens;
		if (!current) return;
		const res = await this.#http.request<{ accessToken: string; refreshToken: string; expiresIn: number }>(
			"POST",
			"/v1/auth/refresh",
			{ refreshToken: current.refreshToken },
			false,
		);
		this.#tokens = {
			accessToken: res.accessToken,
			refreshToken: res.refreshToken,
			expiresAt: Date.now() + res.expiresIn * 1000,
		};
	}

	// ---------------------------------------------------------------- device and keys

	/** Registers this device's credential and publishes KeyPackages (plus a last-resort one). */
	async registerDevice(name: string, packages = DEFAULT_KEY_PACKAGE_BATCH): Promise<string> {
		const { device } = await this.#http.request<{ device: { id: string } }>("POST", "/v1/devices", {
			name,
			credential: this.#device.credential,
		});
		this.#deviceId = device.id;
		this.#device.bind(this.#requireUser().id, device.id);
		const [lastResort] = await this.#device.newKeyPackages(1);
		await this.#http.request("POST", "/v1/keys/packages", {
			deviceId: device.id,
			packages: await this.#device.newKeyPackages(packages),
			lastResort,
		});
		return device.id;
	}

	/** Publishes more one-time packages when fewer than `min` are left. */
	async topUpKeyPackages(min = 10, batch = DEFAULT_KEY_PACKAGE_BATCH): Promise<number> {
		const deviceId = this.#requireDevice();
		const { count } = await this.#http.request<{ count: number }>(
			"GET",
			`/v1/keys/packages/count?deviceId=${deviceId}`,
		);
		if (count >= min) return 0;
		await this.#http.request("POST", "/v1/keys/packages", {
			deviceId,
			packages: await this.#device.newKeyPackages(batch),
		});
		return batch;
	}

	// ---------------------------------------------------------------- conversations

	/** Starts a group conversation whose messages only its members' devices can read. */
	async startConversation(memberIds: string[], title?: string): Promise<string> {
		const { conversation } = await this.#http.request<{ conversation: Conversation }>("POST", "/v1/conversations", {
			type: "group",
			memberIds,
			...(title && { title }),
		});
		this.#groups.set(conversation.id, { state: await this.#device.createGroup(conversation.id), lastSeq: 0 });
		await this.#addDevices(conversation.id, memberIds);
		return conversation.id;
	}

	/** Adds users to the conversation and to its MLS group. Returns how many commit attempts it took. */
	async addMembers(
		conversationId: string,
		userIds: string[],
		options: { role?: "admin" | "member" } = {},
	): Promise<number> {
		await this.#http.request("POST", `/v1/conversations/${conversationId}/members`, { userIds, ...options });
		return this.#addDevices(conversationId, userIds);
	}

	async #addDevices(conversationId: string, userIds: string[]): Promise<number> {
		const { packages } = await this.#http.request<{ packages: ClaimedKeyPackage[] }>("POST", "/v1/keys/claim", {
			userIds,
		});
		if (packages.length === 0) return 0;
		return this.#commit(conversationId, () => ({
			proposals: this.#device.addProposals(packages.map((p) => p.package)),
			welcomeDevices: packages.map((p) => p.deviceId),
		}));
	}

	/** Removes a user from the MLS group (they cannot read what follows), then from the conversation. */
	async removeMember(conversationId: string, userId: string): Promise<number> {
		const attempts = await this.#commit(conversationId, (state) => ({
			proposals: this.#device.removeProposals(state, userId),
			welcomeDevices: [],
		}));
		await this.#http.request("DELETE", `/v1/conversations/${conversationId}/members/${userId}`);
		return attempts;
	}

	/**
	 * Sends a commit for the epoch this device is at. If another member's commit
	 * won that epoch, the Delivery Service refuses ours with STALE_EPOCH: catch
	 * up, rebuild, retry.
	 */
	async #commit(
		conversationId: string,
		build: (state: ClientState) => { proposals: ReturnType<MlsDevice["addProposals"]>; welcomeDevices: string[] },
	): Promise<number> {
		for (let attempt = 1; attempt <= MAX_COMMIT_ATTEMPTS; attempt++) {
			// Optimistic first: commit on what this device knows; after a refusal, catch up first.
			if (attempt > 1) await this.sync(conversationId);
			const group = this.#group(conversationId);
			const { proposals, welcomeDevices } = build(group.state);
			if (proposals.length === 0) return attempt;
			const out = await this.#device.commit(group.state, proposals);
			const clientId = this.#clientId();
			try {
				const { message } = await this.#http.request<{ message: Message }>(
					"POST",
					`/v1/conversations/${conversationId}/messages`,
					{
						clientId,
						ciphertext: out.commit,
						senderDeviceId: this.#requireDevice(),
						...(out.welcome &&
							welcomeDevices.length > 0 && { welcome: { message: out.welcome, deviceIds: welcomeDevices } }),
					},
				);
				group.state = out.next;
				group.lastSeq = Math.max(group.lastSeq, message.seq);
				return attempt;
			} catch (error) {
				if (error instanceof SecureConnectError && error.code === "STALE_EPOCH") continue;
				throw error;
			}
		}
		throw new Error(`commit still stale after ${MAX_COMMIT_ATTEMPTS} attempts`);
	}

	/** Joins every conversation group this device has been invited to (MLS Welcome). */
	async acceptInvites(conversationId: string): Promise<boolean> {
		const deviceId = this.#requireDevice();
		const { welcomes } = await this.#http.request<{ welcomes: PendingWelcome[] }>(
			"GET",
			`/v1/conversations/${conversationId}/welcomes?deviceId=${deviceId}`,
		);
		for (const welcome of welcomes) {
			try {
				const state = await this.#device.join(welcome.message);
				this.#groups.set(conversationId, { state, lastSeq: 0 });
				await this.#http.request(
					"DELETE",
					`/v1/conversations/${conversationId}/welcomes/${welcome.id}?deviceId=${deviceId}`,
				);
				return true;
			} catch {
				// A Welcome for a package this device no longer holds: try the next one.
			}
		}
		return false;
	}

	hasGroup(conversationId: string): boolean {
		return this.#groups.has(conversationId);
	}

	/** Encrypts and sends; returns the message's sequence number. */
	async send(conversationId: string, text: string | Uint8Array): Promise<number> {
		const group = this.#group(conversationId);
		const plaintext = typeof text === "string" ? utf8.encode(text) : text;
		const ciphertext = await serially(group, async () => {
			const out = await this.#device.encrypt(group.state, plaintext);
			group.state = out.state;
			return out.ciphertext;
		});
		const clientId = this.#clientId();
		const { message } = await this.#http.request<{ message: Message }>(
			"POST",
			`/v1/conversations/${conversationId}/messages`,
			{
				clientId,
				ciphertext,
				senderDeviceId: this.#requireDevice(),
			},
		);
		return message.seq;
	}

	/** Fetches and decrypts everything after what this device has seen, in order. */
	async sync(conversationId: string): Promise<ReceivedMessage[]> {
		const group = this.#group(conversationId);
		const out: ReceivedMessage[] = [];
		for (;;) {
			const page = await this.#http.request<HistoryPage>(
				"GET",
				`/v1/conversations/${conversationId}/messages?after=${group.lastSeq}&limit=200`,
			);
			for (const message of page.messages) out.push(...(await this.receive(conversationId, message)));
			if (!page.hasMore) break;
		}
		return out;
	}

	/** Applies one message from the log (socket or history); idempotent by seq. */
	async receive(conversationId: string, message: Message): Promise<ReceivedMessage[]> {
		const group = this.#group(conversationId);
		if (message.seq <= group.lastSeq) return [];
		group.lastSeq = message.seq;
		const base = {
			seq: message.seq,
			senderId: message.senderId,
			senderDeviceId: message.senderDeviceId,
			clientId: message.clientId,
			sentAt: message.sentAt,
		};
		if (this.#sent.has(message.clientId) || message.kind !== "message" || message.deleted) return [];
		try {
			const processed = await serially(group, async () => {
				const out = await this.#device.process(group.state, message.ciphertext);
				group.state = out.state;
				return out;
			});
			if (processed.kind === "handshake") return [{ ...base, kind: "handshake" }];
			return [{ ...base, kind: "application", plaintext: processed.plaintext, text: utf8.decode(processed.plaintext) }];
		} catch {
			return [{ ...base, kind: "undecryptable" }];
		}
	}

	/** A live conversation socket that reconnects and resumes where it left off. */
	connect(
		conversationId: string,
		onMessage: (message: ReceivedMessage) => void,
		onEvent?: (frame: SingleServerFrame) => void,
	): ConversationSocket {
		const group = this.#group(conversationId);
		return new ConversationSocket({
			url: `${this.#http.baseUrl.replace(/^http/, "ws")}/v1/conversations/${conversationId}/ws`,
			token: async () => (await this.accessToken()) ?? "",
			afterSeq: () => group.lastSeq,
			...(this.#options.connect && { connect: this.#options.connect }),
			...(onEvent && { onEvent }),
			onMessage: async (message) => {
				for (const received of await this.receive(conversationId, message)) onMessage(received);
			},
		});
	}

	// ---------------------------------------------------------------- internals

	#group(conversationId: string): Group {
		const group = this.#groups.get(conversationId);
		if (!group) throw new Error(`this device is not in the MLS group of ${conversationId}; call acceptInvites first`);
		return group;
	}

	#clientId(): string {
		const id = `${this.#deviceId ?? "dev"}:${crypto.randomUUID()}`;
		this.#sent.add(id);
		return id;
	}

	#requireUser(): User {
		if (!this.#user) throw new Error("log in first");
		return this.#user;
	}

	#requireDevice(): string {
		if (!this.#deviceId) throw new Error("register the device first");
		return this.#deviceId;
	}
}
