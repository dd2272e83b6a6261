// APNs relay: the api's Worker cannot speak HTTP/2 and Apple's APNs speaks
// nothing else, so the api prepares each push (path, headers with its own
// provider JWT, JSON body) and POSTs a batch here, signed like every api ↔
// media node call (see signing.ts). The relay sends them as concurrent
// streams over one HTTP/2 session to APNs and answers the statuses in order.
//
//   POST /internal/apns
//     x-sc-timestamp, x-sc-signature: v1=hex(HMAC-SHA256(MEDIA_NODE_SECRET, ts + "." + body))
//     {"requests":[{"path":"/3/device/<hex>","headers":{…},"body":"{…}"}]}
//   -> 200 {"results":[{"status":200,"apnsId":"…","body":""}, {"status":410,"body":"{\"reason\":\"Unregistered\"}"}]}
//      (status 0 + error: no answer from APNs for that request)
//   -> 401 bad signature, 400 malformed, 413 too large, 405 not POST, 503 no secret configured
//
// Only APNs device paths and apns-* headers pass, and only to the configured
// origin: the relay is not an open proxy.

import type { IncomingMessage, ServerResponse } from "node:http";
import http2 from "node:http2";

import type { Logger } from "./Logger.ts";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from "./signing.ts";

export const APNS_RELAY_PATH = "/internal/apns";
export const DEFAULT_APNS_ORIGIN = "https://api.push.apple.com";
export const MAX_RELAY_BODY_BYTES = 1024 * 1024;
export const MAX_RELAY_REQUESTS = 200;
/** APNs refuses payloads over 4 KB (5 KB for VoIP). */
export const MAX_APNS_PAYLOAD_BYTES = 5120;
export const DEFAULT_RELAY_TIMEOUT_MS = 10_000;

const DEVICE_PATH = /^\/3\/device\/[0-9a-fA-F]{64,200}$/;
const FORWARDED_HEADERS = new Set([
	"authorization",
	"apns-topic",
	"apns-push-type",
	"apns-priority",
	"apns-expiration",
	"apns-collapse-id",
	"apns-id",
	"content-type",
]);

export type ApnsRelayRequest = { path: string; headers: Record<string, string>; body: string };
export type ApnsRelayResult = { status: number; body: string; apnsId?: string; retryAfter?: number; error?: string };

export type ApnsRelayOptions = {
	/** MEDIA_NODE_SECRET; undefined = the relay answers 503. */
	secret: string | undefined;
	/** APNs origin; https://api.sandbox.push.apple.com for development builds; http:// = h2c (tests). */
	origin?: string;
	timeoutMs?: number;
	logger?: Logger;
};

/** Parses and checks the relay body; a string is the reason it is refused. */
export function parseRelayBody(raw: string): ApnsRelayRequest[] | string {
	let parsed: unknown;
	try {
		parsed = JSON.parse(raw);
	} catch {
		return "body is not JSON";
	}
	const requests = (parsed as { requests?: unknown } | null)?.requests;
	if (!Array.isArray(requests) || requests.length === 0 || requests.length > MAX_RELAY_REQUESTS) {
		return `requests must be an array of 1 to ${MAX_RELAY_REQUESTS}`;
	}
	const out: ApnsRelayRequest[] = [];
	for (const r of requests as unknown[]) {
		const { path, headers, body } = (r ?? {}) as Record<string, unknown>;
		if (typeof path !== "string" || !DEVICE_PATH.test(path)) return "path must be /3/device/<hex token>";
		if (typeof body !== "string" || Buffer.byteLength(body) > MAX_APNS_PAYLOAD_BYTES)
			return "body must be a string ≤ 5 KB";
		if (headers === null || typeof headers !== "object") return "headers must be an object";
		const clean: Record<string, string> = {};
		for (const [name, value] of Object.entries(headers)) {
			const key = name.toLowerCase();
			if (!FORWARDED_HEADERS.has(key) || typeof value !== "string" || /[\r\n]/.test(value)) {
				return `header ${name} is not relayed`;
			}
			clean[key] = value;
		}
		out.push({ path, headers: clean, body });
	}
	return out;
}

export class ApnsRelay {
	readonly #secret: string | undefined;
	readonly #origin: string;
	readonly #timeoutMs: number;
	readonly #logger: Logger | undefined;
	#session: http2.ClientHttp2Session | undefined;

	constructor(options: ApnsRelayOptions) {
		this.#secret = options.secret;
		this.#origin = options.origin ?? DEFAULT_APNS_ORIGIN;
		this.#timeoutMs = options.timeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS;
		this.#logger = options.logger?.child({ component: "apns-relay" });
	}

	/** Answers the request when it is for the relay (returns true); otherwise leaves it alone. */
	handle(req: IncomingMessage, res: ServerResponse): boolean {
		const path = new URL(req.url ?? "/", "http://localhost").pathname;
		if (path !== APNS_RELAY_PATH) return false;
		if (req.method !== "POST") {
			res.setHeader("allow", "POST");
			sendJson(res, 405, { error: "method_not_allowed" });
			return true;
		}
		const chunks: Buffer[] = [];
		let size = 0;
		let tooLarge = false;
		req.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > MAX_RELAY_BODY_BYTES) tooLarge = true;
			else chunks.push(chunk);
		});
		req.on("end", () => {
			void this.#answer(req, res, tooLarge ? undefined : Buffer.concat(chunks).toString("utf8")).catch((error) => {
				this.#logger?.error("apns relay failed", { error });
				if (!res.headersSent) sendJson(res, 500, { error: "internal_error" });
				else res.destroy();
			});
		});
		return true;
	}

	async #answer(req: IncomingMessage, res: ServerResponse, raw: string | undefined): Promise<void> {
		if (raw === undefined) return sendJson(res, 413, { error: "payload_too_large" });
		if (this.#secret === undefined) return sendJson(res, 503, { error: "not_configured" });
		const header = (name: string) => {
			const value = req.headers[name];
			return typeof value === "string" ? value : undefined;
		};
		const check = verifySignature(this.#secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), raw);
		if (!check.ok) {
			this.#logger?.warn("unsigned or mis-signed apns relay request", { reason: check.reason });
			return sendJson(res, 401, { error: "bad_signature" });
		}
		const requests = parseRelayBody(raw);
		if (typeof requests === "string") return sendJson(res, 400, { error: "bad_request", message: requests });
		const results = await this.relay(requests);
		this.#logger?.info("apns relayed", {
			count: results.length,
			statuses: results.map((r) => r.status).join(","),
		});
		sendJson(res, 200, { results });
	}

	/** Sends every request over the shared HTTP/2 session; never rejects. */
	relay(requests: ApnsRelayRequest[]): Promise<ApnsRelayResult[]> {
		return Promise.all(requests.map((r) => this.#one(r)));
	}

	#connect(): http2.ClientHttp2Session {
		const live = this.#session;
		if (live && !live.closed && !live.destroyed) return live;
		const session = http2.connect(this.#origin);
		const forget = () => {
			if (this.#session === session) this.#session = undefined;
		};
		session.on("error", (error) => {
			this.#logger?.warn("apns session error", { error });
			forget();
		});
		session.on("goaway", forget);
		session.on("close", forget);
		// Idle sessions should not keep the process alive.
		session.unref();
		this.#session = session;
		return session;
	}

	#one(request: ApnsRelayRequest): Promise<ApnsRelayResult> {
		return new Promise((resolve) => {
			let settled = false;
			const done = (result: ApnsRelayResult) => {
				if (settled) return;
				settled = true;
				clearTimeout(timer);
				resolve(result);
			};
			const timer = setTimeout(() => {
				stream?.close(http2.constants.NGHTTP2_CANCEL);
				done({ status: 0, body: "", error: `no answer within ${this.#timeoutMs} ms` });
			}, this.#timeoutMs);
			let stream: http2.ClientHttp2Stream | undefined;
			try {
				stream = this.#connect().request({
					":method": "POST",
					":path": request.path,
					...request.headers,
				});
			} catch (error) {
				done({ status: 0, body: "", error: (error as Error).message });
				return;
			}
			let status = 0;
			let apnsId: string | undefined;
			let retryAfter: number | undefined;
			const chunks: Buffer[] = [];
			stream.on("response", (headers) => {
				status = Number(headers[":status"] ?? 0);
				const id = headers["apns-id"];
				apnsId = typeof id === "string" ? id : undefined;
				const after = Number(headers["retry-after"]);
				retryAfter = Number.isFinite(after) && after >= 0 ? after : undefined;
			});
			stream.on("data", (chunk: Buffer) => chunks.push(chunk));
			stream.on("end", () =>
				done({
					status,
					body: Buffer.concat(chunks).toString("utf8"),
					...(apnsId !== undefined && { apnsId }),
					...(retryAfter !== undefined && { retryAfter }),
				}),
			);
			stream.on("error", (error) => done({ status: 0, body: "", error: error.message }));
			stream.on("close", () => done({ status, body: Buffer.concat(chunks).toString("utf8") }));
			stream.end(request.body);
		});
	}

	/** Closes the HTTP/2 session (the relay reconnects on next use). */
	close(): void {
		this.#session?.close();
		this.#session = undefined;
	}
}

function sendJson(res: ServerResponse, status: number, body: Record<string, unknown>): void {
	const payload = JSON.stringify(body);
	res.writeHead(status, {
		"content-type": "application/json; charset=utf-8",
		"content-length": Buffer.byteLength(payload),
		"cache-control": "no-store",
	});
	res.end(payload);
}
