// The api as a client sees it: accounts, a group conversation, the call
// lifecycle and TURN credentials, plus the user channel where calls ring.
import { APP_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX } from "../../protocol/src/realtime.ts";
import type { IceServerParam } from "./types.ts";

export interface User {
	id: string;
	name: string;
	accessToken: string;
}

export interface JoinInfo {
	url: string;
	token: string;
	iceServers: IceServerParam[];
	turn: "ok" | "not_configured";
}

export class Api {
	readonly base: string;
	constructor(base: string) {
		this.base = base;
	}

	async request<T>(path: string, options: { token?: string; body?: unknown; method?: string } = {}): Promise<T> {
		const res = await fetch(`${this.base}${path}`, {
			method: options.method ?? (options.body === undefined ? "GET" : "POST"),
			headers: {
				...(options.token && { authorization: `Bearer ${options.token}` }),
				...(options.body !== undefined && { "content-type": "application/json" }),
			},
			...(options.body !== undefined && { body: JSON.stringify(options.body) }),
		});
		const text = await res.text();
		if (!res.ok) throw new Error(`${options.method ?? "POST"} ${path}: ${res.status} ${text}`);
		return (text ? JSON.parse(text) : undefined) as T;
	}

	async newUser(name: string, runId: string): Promise<User> {
		const handle = `e2e_${runId}_${name}`.toLowerCase().slice(0, 32);
		const email = `${handle}@example.test`;
		const password = "call tests passphrase 2026";
		const { user } = await this.request<{ user: { id: string } }>("/v1/auth/register", {
			body: { email, password, handle, displayName: name },
		});
		const login = await this.request<{ accessToken: string }>("/v1/auth/login", {
			body: { email, password, deviceName: "chromium" },
		});
		return { id: user.id, name, accessToken: login.accessToken };
	}

	async group(owner: User, members: User[], title: string): Promise<string> {
		const { conversation } = await this.request<{ conversation: { id: string } }>("/v1/conversations", {
			token: owner.accessToken,
			body: { type: "group", memberIds: members.filter((m) => m.id !== owner.id).map((m) => m.id), title },
		});
		return conversation.id;
	}

	async startCall(caller: User, conversationId: string): Promise<{ callId: string; join: JoinInfo }> {
		const { call, join } = await this.request<{ call: { id: string }; join: JoinInfo }>("/v1/calls", {
			token: caller.accessToken,
			body: { conversationId, media: "video" },
		});
		return { callId: call.id, join };
	}

	async joinCall(user: User, callId: string): Promise<JoinInfo> {
		return (await this.request<{ join: JoinInfo }>(`/v1/calls/${callId}/join`, { token: user.accessToken, body: {} }))
			.join;
	}

	async leaveCall(user: User, callId: string): Promise<void> {
		await this.request(`/v1/calls/${callId}/leave`, { token: user.accessToken, body: {} }).catch(() => {});
	}

	async turnCredentials(user: User): Promise<{ iceServers: IceServerParam[]; turn: string }> {
		return await this.request("/v1/turn/credentials", { token: user.accessToken });
	}

	/** Resolves when the user's channel (GET /v1/ws) carries `{type:"call", event:"ring", callId}` for a call. */
	async ringing(user: User, timeoutMs = 10_000): Promise<{ waitFor(callId: string): Promise<void>; close(): void }> {
		const url = `${this.base.replace(/^http/, "ws")}/v1/ws`;
		const ws = new WebSocket(url, [APP_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${user.accessToken}`]);
		const rings = new Set<string>();
		const waiters = new Map<string, () => void>();
		ws.addEventListener("message", (event) => {
			const frame = JSON.parse(String(event.data)) as { type?: string; event?: string; callId?: string };
			if (frame.type !== "call" || frame.event !== "ring" || !frame.callId) return;
			rings.add(frame.callId);
			waiters.get(frame.callId)?.();
		});
		await new Promise<void>((resolve, reject) => {
			ws.addEventListener("open", () => resolve(), { once: true });
			ws.addEventListener("error", () => reject(new Error("user channel did not open")), { once: true });
		});
		return {
			waitFor: (callId) =>
				new Promise<void>((resolve, reject) => {
					if (rings.has(callId)) return resolve();
					const timer = setTimeout(() => reject(new Error(`${user.name} was not rung`)), timeoutMs);
					waiters.set(callId, () => {
						clearTimeout(timer);
						resolve();
					});
				}),
			close: () => ws.close(),
		};
	}
}
