// Apple Push Notification service, token-based: an ES256 provider JWT
// (kid = key id, iss = team id, iat) signed with the .p8 key, reused for at
// most 50 minutes (Apple refuses tokens older than an hour).
//
// APNs speaks HTTP/2 only, and a Worker's fetch() cannot be made to use it, so
// requests are prepared here and sent by a transport: `direct` (fetch; for
// endpoints that also speak HTTP/1.1, such as test fakes) or `relay` (signed
// POST to the media node, which holds an HTTP/2 session to Apple; see
// media-node/src/ApnsRelay.ts).
import { importPKCS8, SignJWT } from "jose";
import { signNodeRequest } from "../../calls/node-signature.ts";
import type { ApnsConfig } from "../config.ts";
import { parseJson, retryAfterSeconds, timedFetch } from "../http.ts";
import { type DeliveryOutcome, errorReason, type PushPayload, retryableStatus } from "./types.ts";

export const PROVIDER_TOKEN_TTL_MS = 50 * 60_000;
export const RELAY_PATH = "/internal/apns";
const MESSAGE_TTL_SECONDS = 86_400;

/** One HTTP/2 request to APNs, as the relay receives it. */
export interface ApnsRequest {
	/** `/3/device/<hex token>` */
	path: string;
	headers: Record<string, string>;
	body: string;
}

export interface ApnsResponse {
	/** 0 when no answer came (network error, stream reset). */
	status: number;
	body: string;
	apnsId?: string;
	retryAfter?: number;
	error?: string;
}

export interface ApnsTransport {
	send(requests: ApnsRequest[]): Promise<ApnsResponse[]>;
}

/** fetch() straight to the endpoint: HTTP/1.1 in a Worker, so not Apple itself. */
export class DirectApnsTransport implements ApnsTransport {
	readonly #endpoint: string;
	readonly #timeoutMs: number;

	constructor(endpoint: string, timeoutMs: number) {
		this.#endpoint = endpoint;
		this.#timeoutMs = timeoutMs;
	}

	send(requests: ApnsRequest[]): Promise<ApnsResponse[]> {
		return Promise.all(
			requests.map(async (r): Promise<ApnsResponse> => {
				try {
					const reply = await timedFetch("APNs send", this.#timeoutMs, `${this.#endpoint}${r.path}`, {
						method: "POST",
						headers: r.headers,
						body: r.body,
					});
					return {
						status: reply.status,
						body: reply.text,
						apnsId: reply.headers.get("apns-id") ?? undefined,
						retryAfter: retryAfterSeconds(reply.headers),
					};
				} catch (error) {
					return { status: 0, body: "", error: errorReason(error) };
				}
			}),
		);
	}
}

/**
 * POSTs the prepared requests, signed like every api ↔ media node call
 * (x-sc-timestamp, x-sc-signature: v1=hex HMAC-SHA256(MEDIA_NODE_SECRET, ts + "." + body)),
 * to `<relay>/internal/apns`; the relay answers `{results:[…]}` in the same order.
 */
export class RelayApnsTransport implements ApnsTransport {
	readonly #url: string;
	readonly #secret: string;
	readonly #timeoutMs: number;

	constructor(relayUrl: string, secret: string, timeoutMs: number) {
		this.#url = `${relayUrl.replace(/\/+$/, "")}${RELAY_PATH}`;
		this.#secret = secret;
		this.#timeoutMs = timeoutMs;
	}

	async send(requests: ApnsRequest[]): Promise<ApnsResponse[]> {
		const body = JSON.stringify({ requests });
		const timestamp = String(Math.floor(Date.now() / 1000));
		const reply = await timedFetch("APNs relay", this.#timeoutMs, this.#url, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"x-sc-timestamp": timestamp,
				"x-sc-signature": await signNodeRequest(this.#secret, timestamp, body),
			},
			body,
		});
		const parsed = parseJson(reply.text) as { results?: ApnsResponse[] } | undefined;
		if (reply.status !== 200 || !Array.isArray(parsed?.results) || parsed.results.length !== requests.length) {
			throw new Error(`APNs relay answered ${reply.status}`);
		}
		return parsed.results;
	}
}

interface CachedJwt {
	jwt: string;
	issuedAt: number;
}
const providerTokens = new Map<string, CachedJwt>();
const keys = new Map<string, Promise<CryptoKey>>();

export class ApnsClient {
	readonly #config: ApnsConfig;
	readonly #transport: ApnsTransport;

	constructor(config: ApnsConfig, timeoutMs: number, transport?: ApnsTransport) {
		this.#config = config;
		this.#transport =
			transport ??
			(config.transport === "relay" && config.relayUrl
				? new RelayApnsTransport(config.relayUrl, config.relaySecret, timeoutMs)
				: new DirectApnsTransport(config.endpoint, timeoutMs));
	}

	get #cacheKey(): string {
		return `${this.#config.teamId}.${this.#config.keyId}`;
	}

	/** The provider token, reused until it is PROVIDER_TOKEN_TTL_MS old. */
	async providerToken(now = Date.now()): Promise<string> {
		const cached = providerTokens.get(this.#cacheKey);
		if (cached && now - cached.issuedAt < PROVIDER_TOKEN_TTL_MS) return cached.jwt;
		let key = keys.get(this.#config.key);
		if (!key) {
			key = importPKCS8(this.#config.key, "ES256");
			keys.set(this.#config.key, key);
			key.catch(() => keys.delete(this.#config.key));
		}
		const jwt = await new SignJWT({})
			.setProtectedHeader({ alg: "ES256", kid: this.#config.keyId })
			.setIssuer(this.#config.teamId)
			.setIssuedAt(Math.floor(now / 1000))
			.sign(await key);
		providerTokens.set(this.#cacheKey, { jwt, issuedAt: now });
		return jwt;
	}

	#forgetToken(): void {
		providerTokens.delete(this.#cacheKey);
	}

	/** The HTTP/2 request for one device: no message content, only where to look. */
	request(deviceToken: string, payload: PushPayload, jwt: string, now = Date.now()): ApnsRequest {
		const call = payload.kind === "call";
		const custom = {
			kind: payload.kind,
			conversationId: payload.conversationId,
			...(payload.seq !== undefined && { seq: payload.seq }),
			...(payload.callId !== undefined && { callId: payload.callId }),
		};
		// Messages: a generic alert the app's notification service extension replaces after
		// fetching and decrypting; calls: a VoIP push (PushKit) that rings the app.
		const aps = call ? {} : { alert: { "loc-key": "PUSH_NEW_MESSAGE" }, "mutable-content": 1, sound: "default" };
		return {
			path: `/3/device/${deviceToken.toLowerCase()}`,
			headers: {
				authorization: `bearer ${jwt}`,
				"apns-topic": call ? `${this.#config.topic}.voip` : this.#config.topic,
				"apns-push-type": call ? "voip" : "alert",
				"apns-priority": "10",
				"apns-expiration": call ? "0" : String(Math.floor(now / 1000) + MESSAGE_TTL_SECONDS),
				...(!call && { "apns-collapse-id": payload.conversationId }),
				"content-type": "application/json",
			},
			body: JSON.stringify({ aps, ...custom }),
		};
	}

	async send(deviceTokens: string[], payload: PushPayload): Promise<DeliveryOutcome[]> {
		const first = await this.#attempt(deviceTokens, payload);
		// An expired or refused provider token: sign a new one and try those devices once more.
		const stale = first.flatMap((o, i) => (o.status === "retry" && o.reason.includes("ProviderToken") ? [i] : []));
		if (stale.length === 0) return first;
		this.#forgetToken();
		const again = await this.#attempt(
			stale.map((i) => deviceTokens[i] as string),
			payload,
		);
		stale.forEach((i, j) => {
			first[i] = again[j] as DeliveryOutcome;
		});
		return first;
	}

	async #attempt(deviceTokens: string[], payload: PushPayload): Promise<DeliveryOutcome[]> {
		let responses: ApnsResponse[];
		try {
			const jwt = await this.providerToken();
			responses = await this.#transport.send(deviceTokens.map((t) => this.request(t, payload, jwt)));
		} catch (error) {
			const reason = `APNs: ${errorReason(error)}`;
			return deviceTokens.map(() => ({ status: "retry", reason }));
		}
		return responses.map(classifyApns);
	}
}

export function classifyApns(res: ApnsResponse): DeliveryOutcome {
	if (res.status === 200) return { status: "sent" };
	const reason = (parseJson(res.body) as { reason?: string } | undefined)?.reason ?? res.error ?? "";
	const label = `APNs ${res.status} ${reason}`.trim();
	if (res.status === 410) return { status: "prune", reason: label };
	if (res.status === 400 && (reason === "BadDeviceToken" || reason === "DeviceTokenNotForTopic")) {
		return { status: "prune", reason: label };
	}
	if (res.status === 403 && (reason === "ExpiredProviderToken" || reason === "InvalidProviderToken")) {
		return { status: "retry", reason: label };
	}
	if (retryableStatus(res.status)) {
		return {
			status: "retry",
			reason: label,
			...(res.retryAfter !== undefined && { retryAfterSeconds: res.retryAfter }),
		};
	}
	return { status: "rejected", reason: label };
}
