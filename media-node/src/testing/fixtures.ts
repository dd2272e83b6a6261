// Test fixtures: a fake api (JWKS + the media-node webhook endpoints, with
// HMAC checks), call-token signing, in-process media nodes, and a signaling
// client. Used by the *.test.ts files only.

import http from "node:http";
import type { AddressInfo } from "node:net";

import type { CryptoKey, JWK } from "jose";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import WebSocket from "ws";

import {
	MEDIA_TOKEN_AUDIENCE,
	RTC_PATH,
	type RtcMethod,
	type RtcNotificationData,
	type RtcNotificationMethod,
	type RtcRequestData,
	type RtcResponseData,
} from "../../../protocol/src/signaling.ts";
import { loadConfig, type MediaNodeConfig } from "../config.ts";
import { Logger } from "../Logger.ts";
import { MediaNode } from "../MediaNode.ts";
import { NODE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from "../signing.ts";

export const TEST_SECRET = "test-media-node-secret-0123456789abcdef";
export const TEST_NODE_ID = "test-node";

export async function waitFor<T>(
	probe: () => T | undefined | false,
	{ timeoutMs = 10_000, what = "condition" }: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
	const deadline = Date.now() + timeoutMs;

	for (;;) {
		const value = probe();

		if (value !== undefined && value !== false) {
			return value;
		}
		if (Date.now() > deadline) {
			throw new Error(`timed out waiting for ${what}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}

// --- signing keys and tokens ---------------------------------------------------------

export type SigningKey = { kid: string; privateKey: CryptoKey; publicJwk: JWK };

export async function signingKey(kid: string): Promise<SigningKey> {
	const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });

	return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" } };
}

export type TokenInput = {
	key: SigningKey;
	issuer: string;
	userId: string;
	callId: string;
	deviceId?: string;
	perm?: string[];
	audience?: string;
	/** Seconds relative to now. */
	iat?: number;
	ttl?: number;
	extra?: Record<string, unknown>;
};

export async function callToken(input: TokenInput): Promise<string> {
	const now = Math.floor(Date.now() / 1000);
	const iat = now + (input.iat ?? 0);

	return await new SignJWT({
		cid: input.callId,
		perm: input.perm ?? ["publish", "subscribe", "screen"],
		...(input.deviceId === undefined ? {} : { did: input.deviceId }),
		...input.extra,
	})
		.setProtectedHeader({ alg: "EdDSA", kid: input.key.kid })
		.setIssuer(input.issuer)
		.setAudience(input.audience ?? MEDIA_TOKEN_AUDIENCE)
		.setSubject(input.userId)
		.setIssuedAt(iat)
		.setExpirationTime(iat + (input.ttl ?? 60))
		.sign(input.key.privateKey);
}

// --- fake api ------------------------------------------------------------------------

export type ReceivedRequest = {
	path: string;
	headers: http.IncomingHttpHeaders;
	rawBody: string;
	body: unknown;
	signatureOk: boolean;
	signatureReason: string | undefined;
	/** What the fake api answered. */
	status: number;
};

export class FakeApi {
	readonly keys: SigningKey[] = [];
	readonly received: ReceivedRequest[] = [];
	/** Status the webhook endpoints answer with (e.g. 503 to exercise retries). */
	webhookStatus = 204;
	jwksRequests = 0;
	#server: http.Server;
	#secret: string;

	static async start(secret: string = TEST_SECRET): Promise<FakeApi> {
		const api = new FakeApi(secret);

		await new Promise<void>((resolve) => api.#server.listen(0, "127.0.0.1", resolve));

		return api;
	}

	private constructor(secret: string) {
		this.#secret = secret;
		this.#server = http.createServer((req, res) => this.#handle(req, res));
	}

	get url(): string {
		return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
	}

	heartbeats(): ReceivedRequest[] {
		return this.received.filter((r) => r.path === "/internal/media-nodes/heartbeat");
	}

	/** Events the fake api accepted (2xx), in arrival order. */
	events(): { type: string; callId: string; userId?: string; at: string; id: string }[] {
		return this.received
			.filter((r) => r.path === "/internal/media-nodes/events" && r.signatureOk && r.status < 300)
			.flatMap((r) => (r.body as { events: { type: string; callId: string; at: string; id: string }[] }).events);
	}

	async close(): Promise<void> {
		this.#server.closeAllConnections();
		await new Promise<void>((resolve) => this.#server.close(() => resolve()));
	}

	#handle(req: http.IncomingMessage, res: http.ServerResponse): void {
		const chunks: Buffer[] = [];

		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.on("end", () => {
			const path = new URL(req.url ?? "/", "http://x").pathname;

			if (path === "/.well-known/jwks.json") {
				this.jwksRequests++;
				res.writeHead(200, { "content-type": "application/json" });
				res.end(JSON.stringify({ keys: this.keys.map((k) => k.publicJwk) }));

				return;
			}

			const rawBody = Buffer.concat(chunks).toString("utf8");
			const header = (name: string) => {
				const value = req.headers[name];

				return typeof value === "string" ? value : undefined;
			};
			const check = verifySignature(this.#secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), rawBody);
			let body: unknown;

			try {
				body = JSON.parse(rawBody);
			} catch {
				body = undefined;
			}
			const status = check.ok ? this.webhookStatus : 401;

			this.received.push({
				status,
				path,
				headers: req.headers,
				rawBody,
				body,
				signatureOk: check.ok && header(NODE_ID_HEADER) !== undefined,
				signatureReason: check.ok ? undefined : check.reason,
			});
			res.writeHead(status);
			res.end();
		});
	}
}

// --- media nodes ---------------------------------------------------------------------

export type TestNode = {
	node: MediaNode;
	config: MediaNodeConfig;
	logs: Record<string, unknown>[];
	rawLogs: string[];
	url: string;
	httpUrl: string;
};

export async function startNode(env: Record<string, string>): Promise<TestNode> {
	const config = loadConfig({
		MEDIA_NODE_PORT: "0",
		MEDIA_RTC_PORT: "0",
		MEDIA_WORKERS: "1",
		MEDIA_NODE_ID: TEST_NODE_ID,
		MEDIA_STATS_INTERVAL_MS: "500",
		LOG_LEVEL: "debug",
		...env,
	});
	const logs: Record<string, unknown>[] = [];
	const rawLogs: string[] = [];
	const logger = Logger.create({
		level: config.logLevel,
		sink: (line) => {
			rawLogs.push(line);
			logs.push(JSON.parse(line) as Record<string, unknown>);
		},
	});
	const node = await MediaNode.create({ config, logger });

	return {
		node,
		config,
		logs,
		rawLogs,
		url: `ws://127.0.0.1:${node.port}${RTC_PATH}`,
		httpUrl: `http://127.0.0.1:${node.port}`,
	};
}

// --- signaling client ----------------------------------------------------------------

export type ServerFrame =
	| { type: "response"; id: number; ok: true; data: unknown }
	| { type: "response"; id: number; ok: false; error: { code: string; message: string } }
	| { type: "notification"; method: RtcNotificationMethod; data: unknown }
	| { type: "error"; code: string; message: string };

export class RequestError extends Error {
	readonly code: string;

	constructor(code: string, message: string) {
		super(`${code}: ${message}`);
		this.code = code;
	}
}

export class SignalingClient {
	readonly ws: WebSocket;
	readonly frames: ServerFrame[] = [];
	readonly closed: Promise<{ code: number; reason: string }>;
	#nextId = 1;
	#pending = new Map<number, { resolve: (data: unknown) => void; reject: (error: Error) => void }>();
	#listeners = new Set<(frame: ServerFrame) => void>();

	/** Opens a socket: with the token as `bearer.<token>` subprotocol, or (auth: "frame") as a first frame. */
	static async open(
		url: string,
		token: string | undefined,
		{ auth = "subprotocol", protocols }: { auth?: "subprotocol" | "frame" | "none"; protocols?: string[] } = {},
	): Promise<SignalingClient> {
		const offered =
			protocols ?? (auth === "subprotocol" && token !== undefined ? [`bearer.${token}`, "secureconnect.v1"] : []);
		const ws = new WebSocket(url, offered);
		const client = new SignalingClient(ws);

		await new Promise<void>((resolve, reject) => {
			ws.once("open", () => resolve());
			ws.once("error", reject);
		});
		if (auth === "frame" && token !== undefined) {
			ws.send(JSON.stringify({ type: "auth", token }));
		}

		return client;
	}

	private constructor(ws: WebSocket) {
		this.ws = ws;
		this.closed = new Promise((resolve) =>
			ws.once("close", (code, reason) => {
				for (const pending of this.#pending.values()) {
					pending.reject(new Error(`socket closed (${code})`));
				}
				this.#pending.clear();
				resolve({ code, reason: reason.toString("utf8") });
			}),
		);
		ws.on("error", () => {});
		ws.on("message", (raw) => {
			const frame = JSON.parse(raw.toString()) as ServerFrame;

			this.frames.push(frame);
			if (frame.type === "response") {
				const pending = this.#pending.get(frame.id);

				this.#pending.delete(frame.id);
				if (frame.ok) {
					pending?.resolve(frame.data);
				} else {
					pending?.reject(new RequestError(frame.error.code, frame.error.message));
				}
			}
			for (const listener of this.#listeners) {
				listener(frame);
			}
		});
	}

	request<M extends RtcMethod>(
		method: M,
		data: RtcRequestData<M> | Record<string, unknown>,
	): Promise<RtcResponseData<M>> {
		const id = this.#nextId++;

		return new Promise((resolve, reject) => {
			this.#pending.set(id, { resolve: resolve as (data: unknown) => void, reject });
			this.ws.send(JSON.stringify({ type: "request", id, method, data }));
		});
	}

	/** Calls `listener` with every frame from now on. */
	on(listener: (frame: ServerFrame) => void): void {
		this.#listeners.add(listener);
	}

	notifications<M extends RtcNotificationMethod>(method: M): RtcNotificationData<M>[] {
		return this.frames
			.filter((f): f is Extract<ServerFrame, { type: "notification" }> => f.type === "notification")
			.filter((f) => f.method === method)
			.map((f) => f.data as RtcNotificationData<M>);
	}

	/** Resolves with the first (past or future) notification `method` matching `match`. */
	async notification<M extends RtcNotificationMethod>(
		method: M,
		match: (data: RtcNotificationData<M>) => boolean = () => true,
		timeoutMs = 10_000,
	): Promise<RtcNotificationData<M>> {
		const seen = this.notifications(method).find(match);

		if (seen) {
			return seen;
		}

		return await new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#listeners.delete(listener);
				reject(new Error(`no "${method}" notification within ${timeoutMs} ms`));
			}, timeoutMs);
			const listener = (frame: ServerFrame) => {
				if (frame.type === "notification" && frame.method === method) {
					const data = frame.data as RtcNotificationData<M>;

					if (match(data)) {
						clearTimeout(timer);
						this.#listeners.delete(listener);
						resolve(data);
					}
				}
			};

			this.#listeners.add(listener);
		});
	}

	errorFrame(): Extract<ServerFrame, { type: "error" }> | undefined {
		return this.frames.find((f): f is Extract<ServerFrame, { type: "error" }> => f.type === "error");
	}

	close(): void {
		this.ws.close();
	}
}
