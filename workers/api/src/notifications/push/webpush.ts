// Web Push: the payload is encrypted for the browser (RFC 8291, aes128gcm of
// RFC 8188) and the request carries a VAPID token (RFC 8292). Web Crypto only.
import { SignJWT } from "jose";
import type { WebPushKeys } from "../../db/schema/index.ts";
import { fromBase64 } from "../../lib/crypto.ts";
import type { WebPushConfig } from "../config.ts";
import { retryAfterSeconds, timedFetch } from "../http.ts";
import { type DeliveryOutcome, errorReason, type PushPayload, retryableStatus } from "./types.ts";

const encoder = new TextEncoder();
/** One record holds the whole payload; 4096 is what every push service accepts. */
export const RECORD_SIZE = 4096;
/** Plaintexts are padded to at least this many bytes, so sizes say nothing. */
const PAD_TO = 128;
const VAPID_LIFETIME_SECONDS = 12 * 3600;
const MESSAGE_TTL_SECONDS = 86_400;
const CALL_TTL_SECONDS = 60;

function concat(...parts: Uint8Array[]): Uint8Array {
	const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
	let at = 0;
	for (const p of parts) {
		out.set(p, at);
		at += p.length;
	}
	return out;
}

async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, bytes: number): Promise<Uint8Array> {
	const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
	return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

export interface EncryptOptions {
	/** Fixed values for known-answer tests; random otherwise. */
	salt?: Uint8Array;
	senderKeys?: CryptoKeyPair;
	/** Pad the plaintext to at least this many bytes (default PAD_TO). */
	padTo?: number;
}

/**
 * RFC 8291 §3: ECDH between a fresh sender key and the subscription's p256dh,
 * mixed with its auth secret, gives the content encryption key and nonce of
 * one aes128gcm record (RFC 8188 §2): salt ‖ rs ‖ idlen ‖ sender key ‖ ciphertext.
 */
export async function encryptWebPush(
	plaintext: Uint8Array,
	p256dh: Uint8Array,
	authSecret: Uint8Array,
	options: EncryptOptions = {},
): Promise<Uint8Array> {
	const uaPublic = await crypto.subtle.importKey("raw", p256dh, { name: "ECDH", namedCurve: "P-256" }, false, []);
	const sender =
		options.senderKeys ??
		((await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair);
	const asPublic = new Uint8Array((await crypto.subtle.exportKey("raw", sender.publicKey)) as ArrayBuffer);
	const ecdhSecret = new Uint8Array(
		await crypto.subtle.deriveBits(
			// workers-types spells the standard `public` member `$public`.
			{ name: "ECDH", public: uaPublic } as unknown as SubtleCryptoDeriveKeyAlgorithm,
			sender.privateKey,
			256,
		),
	);
	const keyInfo = concat(encoder.encode("WebPush: info\0"), p256dh, asPublic);
	const ikm = await hkdf(authSecret, ecdhSecret, keyInfo, 32);
	const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
	const cek = await hkdf(salt, ikm, encoder.encode("Content-Encoding: aes128gcm\0"), 16);
	const nonce = await hkdf(salt, ikm, encoder.encode("Content-Encoding: nonce\0"), 12);
	// The last (only) record: data, the 0x02 delimiter, then zero padding.
	const padded = new Uint8Array(Math.max(plaintext.length + 1, options.padTo ?? PAD_TO));
	padded.set(plaintext);
	padded[plaintext.length] = 2;
	if (padded.length + 16 > RECORD_SIZE) throw new Error("web push payload too large for one record");
	const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
	const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, key, padded));
	const header = new Uint8Array(21);
	header.set(salt);
	new DataView(header.buffer).setUint32(16, RECORD_SIZE);
	header[20] = asPublic.length;
	return concat(header, asPublic, ciphertext);
}

/** Push service URLs come from browsers: outside dev/test only public https hosts. */
export function acceptableEndpoint(endpoint: string, allowInsecure: boolean): boolean {
	let url: URL;
	try {
		url = new URL(endpoint);
	} catch {
		return false;
	}
	if (allowInsecure) return url.protocol === "https:" || url.protocol === "http:";
	const host = url.hostname.toLowerCase();
	const ipLiteral = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[");
	return (
		url.protocol === "https:" &&
		!ipLiteral &&
		host.includes(".") &&
		host !== "localhost" &&
		!host.endsWith(".localhost") &&
		!host.endsWith(".local") &&
		!host.endsWith(".internal") &&
		url.username === "" &&
		url.password === ""
	);
}

const vapidTokens = new Map<string, { header: string; expiresAt: number }>();
let signingKey: { jwk: string; key: Promise<CryptoKey> } | undefined;

export class WebPushClient {
	readonly #config: WebPushConfig;
	readonly #timeoutMs: number;

	constructor(config: WebPushConfig, timeoutMs: number) {
		this.#config = config;
		this.#timeoutMs = timeoutMs;
	}

	#key(): Promise<CryptoKey> {
		const jwk = JSON.stringify(this.#config.privateJwk);
		if (signingKey?.jwk !== jwk) {
			const key = crypto.subtle.importKey(
				"jwk",
				this.#config.privateJwk,
				{ name: "ECDSA", namedCurve: "P-256" },
				false,
				["sign"],
			);
			signingKey = { jwk, key };
		}
		return signingKey.key;
	}

	/** `vapid t=<ES256 JWT: aud = the push service's origin, exp, sub>, k=<public key>` (RFC 8292 §3). */
	async authorization(endpoint: string, now = Date.now()): Promise<string> {
		const audience = new URL(endpoint).origin;
		const cacheKey = `${this.#config.publicKey} ${audience}`;
		const cached = vapidTokens.get(cacheKey);
		if (cached && cached.expiresAt - 3600_000 > now) return cached.header;
		const exp = Math.floor(now / 1000) + VAPID_LIFETIME_SECONDS;
		const jwt = await new SignJWT({})
			.setProtectedHeader({ alg: "ES256", typ: "JWT" })
			.setAudience(audience)
			.setExpirationTime(exp)
			.setSubject(this.#config.subject)
			.sign(await this.#key());
		const header = `vapid t=${jwt}, k=${this.#config.publicKey}`;
		vapidTokens.set(cacheKey, { header, expiresAt: exp * 1000 });
		return header;
	}

	async send(subscriptions: WebPushKeys[], payload: PushPayload): Promise<DeliveryOutcome[]> {
		return Promise.all(subscriptions.map((s) => this.#sendOne(s, payload)));
	}

	async #sendOne(subscription: WebPushKeys, payload: PushPayload): Promise<DeliveryOutcome> {
		if (!acceptableEndpoint(subscription.endpoint, this.#config.allowInsecureEndpoints)) {
			return { status: "prune", reason: "Web Push endpoint is not an acceptable push service URL" };
		}
		const call = payload.kind === "call";
		let reply: Awaited<ReturnType<typeof timedFetch>>;
		try {
			const body = await encryptWebPush(
				encoder.encode(JSON.stringify(payload)),
				fromBase64(subscription.keys.p256dh),
				fromBase64(subscription.keys.auth),
			);
			reply = await timedFetch("Web Push send", this.#timeoutMs, subscription.endpoint, {
				method: "POST",
				headers: {
					authorization: await this.authorization(subscription.endpoint),
					"content-encoding": "aes128gcm",
					"content-type": "application/octet-stream",
					ttl: String(call ? CALL_TTL_SECONDS : MESSAGE_TTL_SECONDS),
					urgency: call ? "high" : "normal",
					// A newer message push for the same conversation replaces one still queued.
					...(!call && { topic: topicOf(payload.conversationId) }),
				},
				body,
			});
		} catch (error) {
			return { status: "retry", reason: `Web Push: ${errorReason(error)}` };
		}
		const label = `Web Push ${reply.status}`;
		if (reply.status >= 200 && reply.status < 300) return { status: "sent" };
		if (reply.status === 404 || reply.status === 410) return { status: "prune", reason: label };
		if (retryableStatus(reply.status)) {
			return { status: "retry", reason: label, retryAfterSeconds: retryAfterSeconds(reply.headers) };
		}
		return { status: "rejected", reason: `${label} ${reply.text.slice(0, 120)}`.trim() };
	}
}

/** Topic: at most 32 characters of the URL-safe base64 alphabet (RFC 8030 §5.4). */
function topicOf(conversationId: string): string {
	return conversationId.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 32);
}
