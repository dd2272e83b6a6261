// Firebase Cloud Messaging, HTTP v1. The service account signs an RS256 JWT
// assertion (RFC 7523), the token endpoint exchanges it for an OAuth2 access
// token (cached until shortly before it expires), and each device token gets
// its own messages:send call (v1 has no multicast).
import { importPKCS8, SignJWT } from "jose";
import type { FcmConfig } from "../config.ts";
import { parseJson, retryAfterSeconds, timedFetch } from "../http.ts";
import { type DeliveryOutcome, errorReason, type PushPayload, retryableStatus } from "./types.ts";

export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** An access token is renewed this long before Google says it expires. */
const EXPIRY_MARGIN_MS = 60_000;
const ASSERTION_LIFETIME_SECONDS = 3600;

interface CachedToken {
	token: string;
	expiresAt: number;
}

// Per isolate: one access token per service account (and token endpoint).
const tokens = new Map<string, Promise<CachedToken>>();
const keys = new Map<string, Promise<CryptoKey>>();

/** Forgets cached access tokens (tests). */
export function resetFcmTokenCache(): void {
	tokens.clear();
}

export class FcmTokenError extends Error {
	readonly status: number;
	constructor(status: number, detail: string) {
		super(`token exchange answered ${status}: ${detail.slice(0, 200)}`);
		this.name = "FcmTokenError";
		this.status = status;
	}
}

export class FcmClient {
	readonly #config: FcmConfig;
	readonly #timeoutMs: number;

	constructor(config: FcmConfig, timeoutMs: number) {
		this.#config = config;
		this.#timeoutMs = timeoutMs;
	}

	get #cacheKey(): string {
		return `${this.#config.serviceAccount.clientEmail} ${this.#config.serviceAccount.tokenUri}`;
	}

	/** A valid access token, from the cache or a fresh exchange. */
	async accessToken(): Promise<string> {
		const key = this.#cacheKey;
		const cached = tokens.get(key);
		if (cached) {
			const got = await cached.catch(() => undefined);
			if (got && got.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return got.token;
			if (tokens.get(key) === cached) tokens.delete(key);
		}
		let pending = tokens.get(key);
		if (!pending) {
			pending = this.#exchange();
			tokens.set(key, pending);
			pending.catch(() => tokens.get(key) === pending && tokens.delete(key));
		}
		return (await pending).token;
	}

	#forgetToken(): void {
		tokens.delete(this.#cacheKey);
	}

	async #signingKey(): Promise<CryptoKey> {
		const account = this.#config.serviceAccount;
		let key = keys.get(account.privateKey);
		if (!key) {
			key = importPKCS8(account.privateKey, "RS256");
			keys.set(account.privateKey, key);
			key.catch(() => keys.delete(account.privateKey));
		}
		return key;
	}

	/** The signed assertion of RFC 7523 §2.1 that Google's token endpoint accepts. */
	async assertion(now = Math.floor(Date.now() / 1000)): Promise<string> {
		const account = this.#config.serviceAccount;
		return new SignJWT({ scope: FCM_SCOPE })
			.setProtectedHeader({
				alg: "RS256",
				typ: "JWT",
				...(account.privateKeyId && { kid: account.privateKeyId }),
			})
			.setIssuer(account.clientEmail)
			.setAudience(account.tokenUri)
			.setIssuedAt(now)
			.setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
			.sign(await this.#signingKey());
	}

	async #exchange(): Promise<CachedToken> {
		const reply = await timedFetch("FCM token exchange", this.#timeoutMs, this.#config.serviceAccount.tokenUri, {
			method: "POST",
			headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
			body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: await this.assertion() }).toString(),
		});
		const body = parseJson(reply.text) as { access_token?: unknown; expires_in?: unknown } | undefined;
		if (reply.status !== 200 || typeof body?.access_token !== "string") {
			throw new FcmTokenError(reply.status, reply.text);
		}
		const lifetime = typeof body.expires_in === "number" ? body.expires_in : 3600;
		return { token: body.access_token, expiresAt: Date.now() + lifetime * 1000 };
	}

	/** The v1 message: data only, every value a string (FCM requires it). */
	message(token: string, payload: PushPayload): Record<string, unknown> {
		const data: Record<string, string> = { kind: payload.kind, conversationId: payload.conversationId };
		if (payload.seq !== undefined) data.seq = String(payload.seq);
		if (payload.callId !== undefined) data.callId = payload.callId;
		const call = payload.kind === "call";
		return {
			message: {
				token,
				data,
				android: {
					priority: call ? "HIGH" : "NORMAL",
					ttl: call ? "60s" : "86400s",
					...(!call && { collapse_key: payload.conversationId }),
				},
				// iOS apps registered through FCM: a silent push the app answers by fetching.
				apns: { headers: { "apns-priority": call ? "10" : "5" }, payload: { aps: { "content-available": 1 } } },
			},
		};
	}

	async send(deviceTokens: string[], payload: PushPayload): Promise<DeliveryOutcome[]> {
		return Promise.all(deviceTokens.map((token) => this.#sendOne(token, payload, true)));
	}

	async #sendOne(token: string, payload: PushPayload, mayRefresh: boolean): Promise<DeliveryOutcome> {
		let accessToken: string;
		try {
			accessToken = await this.accessToken();
		} catch (error) {
			// A broken service account is for the operator to fix: keep retrying until the dead-letter queue.
			return { status: "retry", reason: `FCM access token: ${errorReason(error)}` };
		}
		const url = `${this.#config.endpoint}/v1/projects/${encodeURIComponent(this.#config.serviceAccount.projectId)}/messages:send`;
		let reply: Awaited<ReturnType<typeof timedFetch>>;
		try {
			reply = await timedFetch("FCM send", this.#timeoutMs, url, {
				method: "POST",
				headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json; charset=utf-8" },
				body: JSON.stringify(this.message(token, payload)),
			});
		} catch (error) {
			return { status: "retry", reason: `FCM: ${errorReason(error)}` };
		}
		if (reply.status === 200) return { status: "sent" };
		const code = fcmErrorCode(reply.text);
		if (reply.status === 401 && mayRefresh) {
			this.#forgetToken();
			return this.#sendOne(token, payload, false);
		}
		if (reply.status === 404 || code === "UNREGISTERED") return { status: "prune", reason: `FCM ${code ?? "404"}` };
		if (code === "SENDER_ID_MISMATCH") return { status: "prune", reason: "FCM SENDER_ID_MISMATCH" };
		if (retryableStatus(reply.status) || code === "QUOTA_EXCEEDED" || code === "UNAVAILABLE" || code === "INTERNAL") {
			return {
				status: "retry",
				reason: `FCM ${reply.status} ${code ?? ""}`.trim(),
				retryAfterSeconds: retryAfterSeconds(reply.headers),
			};
		}
		if (reply.status === 401 || reply.status === 403) {
			return { status: "retry", reason: `FCM ${reply.status} ${code ?? ""}`.trim() };
		}
		return { status: "rejected", reason: `FCM ${reply.status} ${code ?? ""}`.trim() };
	}
}

/** The FcmError errorCode of a v1 error body, else its canonical status. */
export function fcmErrorCode(text: string): string | undefined {
	const body = parseJson(text) as
		| { error?: { status?: string; details?: Array<{ "@type"?: string; errorCode?: string }> } }
		| undefined;
	const detail = body?.error?.details?.find((d) => typeof d.errorCode === "string");
	return detail?.errorCode ?? body?.error?.status;
}
