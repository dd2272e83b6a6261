// The accounts and resources the fuzzer's requests name, made through the public
// API as a client would: valid ids are what let generated requests get past
// "not found" into the code that writes.
import type { webcrypto } from "node:crypto";
import { signNodeRequest } from "../../workers/api/src/calls/node-signature.ts";
import { type CallOptions, callApi } from "../http.ts";

export interface Account {
	id: string;
	email: string;
	handle: string;
	password: string;
	token: string;
	sessionId: string;
}

export interface World {
	/** Owns the resources below; most requests are a's. */
	owner: Account;
	/** A friend of nobody, blocked by nobody: the "another user". */
	other: Account;
	/** Member of the owner's group. */
	member: Account;
	/** Signs in again whenever a request ends its session or deletes it (logout, password change, DELETE /v1/users/me). */
	victim: Account;
	group: string;
	direct: string;
	file: string;
	device: string;
	call: string;
	friendRequest: string;
	subscription: string;
}

const PASSWORD = "fuzzing passphrase 1234";

export class Api {
	readonly base: string;

	constructor(base: string) {
		this.base = base;
	}

	async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
		return (await callApi(this.base, method, path, options)) as T;
	}

	async register(label: string): Promise<Account> {
		const tag = `${label}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
		const email = `fuzz-${tag}@example.test`;
		const handle = `fz_${tag}`.slice(0, 30);
		const { user } = await this.call<{ user: { id: string } }>("POST", "/v1/auth/register", {
			body: { email, password: PASSWORD, handle, displayName: `Fuzz ${label}` },
		});
		return this.login({ id: user.id, email, handle, password: PASSWORD, token: "", sessionId: "" });
	}

	async login(account: Account): Promise<Account> {
		const { accessToken, sessionId } = await this.call<{ accessToken: string; sessionId: string }>(
			"POST",
			"/v1/auth/login",
			{ body: { email: account.email, password: account.password, deviceName: "fuzzer" } },
		);
		return { ...account, token: accessToken, sessionId };
	}

	/** What a media node sends every few seconds: keeps one (fictional) node eligible for calls. */
	async nodeHeartbeat(secret: string): Promise<void> {
		const body = JSON.stringify({
			nodeId: "node-fuzz",
			// Nothing listens there: the api's calls to the node (ending a call) are refused at once.
			url: "ws://127.0.0.1:9/v1/rtc",
			region: "local",
			capacity: 500,
			load: { calls: 0, peers: 0 },
			draining: false,
		});
		const timestamp = String(Math.floor(Date.now() / 1000));
		const res = await fetch(`${this.base}/internal/media-nodes/heartbeat`, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"x-sc-node-id": "node-fuzz",
				"x-sc-timestamp": timestamp,
				"x-sc-signature": await signNodeRequest(secret, timestamp, body),
			},
			body,
		});
		if (res.status !== 204) throw new Error(`media node heartbeat answered ${res.status}: ${await res.text()}`);
	}
}

async function newDevice(api: Api, user: Account): Promise<string> {
	const pair = (await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
	const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
	const credential = Buffer.from(raw).toString("base64");
	const made = await api.call<{ device: { id: string } }>("POST", "/v1/devices", {
		token: user.token,
		body: { name: "fuzzer", credential },
	});
	return made.device.id;
}

export async function buildWorld(api: Api, mediaNodeSecret: string): Promise<World> {
	const [owner, other, member, victim] = (await Promise.all(
		["owner", "other", "member", "victim"].map((label) => api.register(label)),
	)) as [Account, Account, Account, Account];
	const created = (body: unknown) =>
		api.call<{ conversation: { id: string } }>("POST", "/v1/conversations", { token: owner.token, body });
	const group = (await created({ type: "group", memberIds: [member.id], title: "fuzz" })).conversation.id;
	const direct = (await created({ type: "direct", memberIds: [other.id] })).conversation.id;
	const file = (
		await api.call<{ file: { id: string } }>("POST", "/v1/files", {
			token: owner.token,
			body: { size: 16, contentType: "application/octet-stream", conversationId: group },
		})
	).file.id;
	const device = await newDevice(api, owner);
	await api.nodeHeartbeat(mediaNodeSecret);
	const call = (
		await api.call<{ call: { id: string } }>("POST", "/v1/calls", {
			token: owner.token,
			body: { conversationId: group, media: "audio" },
		})
	).call.id;
	const friendRequest = (
		await api.call<{ request: { id: string } }>("POST", "/v1/friends/requests", {
			token: member.token,
			body: { userId: owner.id },
		})
	).request.id;
	const subscription = (
		await api.call<{ subscription: { id: string } }>("POST", "/v1/push/subscriptions", {
			token: owner.token,
			body: { kind: "fcm", token: `fcm-token-${crypto.randomUUID()}`, deviceId: device },
		})
	).subscription.id;
	return { owner, other, member, victim, group, direct, file, device, call, friendRequest, subscription };
}

async function status(api: Api, path: string, token: string): Promise<{ status: number; body: unknown }> {
	const res = await fetch(`${api.base}${path}`, {
		headers: { authorization: `Bearer ${token}` },
		signal: AbortSignal.timeout(60_000),
	});
	const text = await res.text();
	return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * Remakes what the fuzzer's own successful requests took away (a deleted file
 * or device, an ended call, a group the owner left, a block, a signed-out
 * user), so later requests still reach past "not found". Returns what it
 * remade; what it could not remake only lowers the reach, so it is reported,
 * not thrown.
 */
export async function repairWorld(api: Api, w: World, mediaNodeSecret: string): Promise<string[]> {
	const remade: string[] = [];
	const step = async (what: string, work: () => Promise<boolean>) => {
		try {
			if (await work()) remade.push(what);
		} catch (error) {
			remade.push(`${what} FAILED (${(error as Error).message.slice(0, 120)})`);
		}
	};
	for (const name of ["owner", "other", "member"] as const) {
		await step(`${name}'s session`, async () => {
			if ((await status(api, "/v1/users/me", w[name].token)).status !== 401) return false;
			w[name] = await api.login(w[name]);
			return true;
		});
	}
	await step("blocks lifted", async () => {
		let lifted = false;
		for (const [by, of] of [
			[w.owner, w.member],
			[w.owner, w.other],
			[w.member, w.owner],
			[w.other, w.owner],
		] as const) {
			const blocks = (await status(api, "/v1/blocks", by.token)).body as {
				blocks?: Array<{ userId?: string; id?: string }>;
			};
			if (!JSON.stringify(blocks?.blocks ?? []).includes(of.id)) continue;
			await api.call("DELETE", `/v1/blocks/${of.id}`, { token: by.token });
			lifted = true;
		}
		return lifted;
	});
	const owner = () => w.owner.token;
	await step("group", async () => {
		if ((await status(api, `/v1/conversations/${w.group}`, owner())).status === 200) return false;
		w.group = (
			await api.call<{ conversation: { id: string } }>("POST", "/v1/conversations", {
				token: owner(),
				body: { type: "group", memberIds: [w.member.id], title: "fuzz" },
			})
		).conversation.id;
		return true;
	});
	await step("file", async () => {
		if ((await status(api, `/v1/files/${w.file}`, owner())).status === 200) return false;
		w.file = (
			await api.call<{ file: { id: string } }>("POST", "/v1/files", {
				token: owner(),
				body: { size: 16, contentType: "application/octet-stream", conversationId: w.group },
			})
		).file.id;
		return true;
	});
	await step("device", async () => {
		const devices = (await status(api, "/v1/devices", owner())).body as { devices?: Array<{ id: string }> };
		if (devices?.devices?.some((d) => d.id === w.device)) return false;
		w.device = await newDevice(api, w.owner);
		return true;
	});
	await step("push subscription", async () => {
		const subs = (await status(api, "/v1/push/subscriptions", owner())).body as {
			subscriptions?: Array<{ id: string }>;
		};
		if (subs?.subscriptions?.some((s) => s.id === w.subscription)) return false;
		w.subscription = (
			await api.call<{ subscription: { id: string } }>("POST", "/v1/push/subscriptions", {
				token: owner(),
				body: { kind: "fcm", token: `fcm-token-${crypto.randomUUID()}`, deviceId: w.device },
			})
		).subscription.id;
		return true;
	});
	await step("call", async () => {
		const current = await status(api, `/v1/calls/${w.call}`, owner());
		const state = (current.body as { call?: { state?: string } })?.call?.state ?? "gone";
		if (!["ended", "missed", "declined", "gone"].includes(state)) return false;
		await api.nodeHeartbeat(mediaNodeSecret);
		const started = await fetch(`${api.base}/v1/calls`, {
			method: "POST",
			headers: { authorization: `Bearer ${owner()}`, "content-type": "application/json" },
			body: JSON.stringify({ conversationId: w.group, media: "audio" }),
		});
		// A 409 means a call is already going on in the group: the fuzzer's own, which it may keep using.
		const body = (await started.json()) as { call?: { id: string } };
		if (!body.call) return false;
		w.call = body.call.id;
		return true;
	});
	return remade;
}
