// HTTP front of the media node.
//
//   GET  /health  -> 200 {"status":"ok","workers":N}            (N live workers)
//                 -> 503 {"status":"unavailable","workers":0}
//                 -> 503 {"status":"draining","workers":N}      (shutting down)
//   GET  /metrics -> Prometheus text exposition
//   POST /internal/calls/{callId}/end  (signed by the api, see signing.ts)
//                 -> 204 ended, 404 no such call, 401 bad signature,
//                    503 no MEDIA_NODE_SECRET configured
//   GET  /v1/rtc  WebSocket upgrade -> signaling (SignalingServer)
//
// Every request is logged as one JSON line; an `x-request-id` header is
// echoed back and added to the log line as `requestId`.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

import type { Logger } from "./Logger.ts";
import { NODE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from "./signing.ts";

export const REQUEST_ID_HEADER = "x-request-id";
/** Accepted request ids: short, printable, no spaces. Others are ignored. */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** How long close() lets in-flight requests finish before cutting them off. */
export const CLOSE_GRACE_MS = 5_000;
export const HEALTH_PATH = "/health";
export const METRICS_PATH = "/metrics";
export const END_CALL_PATH = /^\/internal\/calls\/([A-Za-z0-9_.:-]{1,128})\/end$/;
export const MAX_INTERNAL_BODY_BYTES = 4096;

/** What the health check needs to know; WorkerPool satisfies it. */
export type HealthSource = {
	readonly liveWorkerCount: number;
	readonly draining?: boolean;
};

export type MediaNodeServerOptions = {
	host: string;
	port: number;
	health: HealthSource;
	logger: Logger;
	/** Renders /metrics (absent: 404). */
	metrics?: () => string;
	/** Takes WebSocket upgrades of `path` (others are refused with 404). */
	upgrade?: { path: string; handle: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void };
	/** Calls the api may end through a signed request (absent: 404). */
	endCall?: { nodeId: string; secret: string | undefined; end: (callId: string) => boolean };
	/** Relays signed APNs requests over HTTP/2 for the api (absent: 404). */
	apnsRelay?: { handle: (req: http.IncomingMessage, res: http.ServerResponse) => boolean; close: () => void };
};

type JsonBody = Record<string, unknown>;

export class MediaNodeServer {
	#server: http.Server;
	#health: HealthSource;
	#logger: Logger;
	#options: MediaNodeServerOptions;

	static async create(options: MediaNodeServerOptions): Promise<MediaNodeServer> {
		const server = new MediaNodeServer(options);

		await new Promise<void>((resolve, reject) => {
			const onError = (error: Error): void => reject(error);

			server.#server.once("error", onError);
			server.#server.listen(options.port, options.host, () => {
				server.#server.off("error", onError);
				resolve();
			});
		});

		server.#server.on("error", (error) => server.#logger.error("http server error", { error }));

		return server;
	}

	private constructor(options: MediaNodeServerOptions) {
		this.#options = options;
		this.#health = options.health;
		this.#logger = options.logger.child({ component: "http" });
		this.#server = http.createServer((req, res) => this.#handle(req, res));
		this.#server.on("upgrade", (req, socket, head) => this.#upgrade(req, socket, head));
	}

	/** The bound address (useful with port 0). */
	get address(): AddressInfo {
		const address = this.#server.address();

		if (address === null || typeof address === "string") {
			throw new Error("server is not listening on a TCP port");
		}

		return address;
	}

	get port(): number {
		return this.address.port;
	}

	/**
	 * Stops accepting connections, lets in-flight requests finish (up to
	 * CLOSE_GRACE_MS) and closes idle keep-alive connections. Idempotent.
	 */
	async close(): Promise<void> {
		this.#options.apnsRelay?.close();
		if (!this.#server.listening) {
			return;
		}

		const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));

		this.#server.closeIdleConnections();

		const grace = setTimeout(() => this.#server.closeAllConnections(), CLOSE_GRACE_MS);

		try {
			await closed;
		} finally {
			clearTimeout(grace);
		}
	}

	#handle(req: http.IncomingMessage, res: http.ServerResponse): void {
		const started = process.hrtime.bigint();
		const requestId = MediaNodeServer.#requestId(req);
		const logger = requestId === undefined ? this.#logger : this.#logger.child({ requestId });

		if (requestId !== undefined) {
			res.setHeader(REQUEST_ID_HEADER, requestId);
		}

		let path = "";

		// 'close' also fires when the client goes away before the response is
		// complete, which 'finish' would not report.
		res.once("close", () => {
			const fields: Record<string, unknown> = {
				method: req.method,
				path,
				status: res.statusCode,
				durationMs: Number(process.hrtime.bigint() - started) / 1e6,
			};

			if (!res.writableFinished) {
				fields.aborted = true;
			}

			// Health checks are polled constantly: keep successful ones out of
			// the info stream.
			if (path === HEALTH_PATH && res.statusCode === 200) {
				logger.debug("http request", fields);
			} else {
				logger.info("http request", fields);
			}
		});

		try {
			path = new URL(req.url ?? "/", "http://localhost").pathname;

			if (path === HEALTH_PATH) {
				if (req.method !== "GET" && req.method !== "HEAD") {
					res.setHeader("allow", "GET, HEAD");
					MediaNodeServer.#sendJson(req, res, 405, { error: "method_not_allowed" });

					return;
				}

				const workers = this.#health.liveWorkerCount;

				if (this.#health.draining) {
					MediaNodeServer.#sendJson(req, res, 503, { status: "draining", workers });
				} else if (workers > 0) {
					MediaNodeServer.#sendJson(req, res, 200, { status: "ok", workers });
				} else {
					MediaNodeServer.#sendJson(req, res, 503, { status: "unavailable", workers });
				}

				return;
			}

			if (path === METRICS_PATH && this.#options.metrics) {
				if (req.method !== "GET" && req.method !== "HEAD") {
					res.setHeader("allow", "GET, HEAD");
					MediaNodeServer.#sendJson(req, res, 405, { error: "method_not_allowed" });

					return;
				}

				const body = this.#options.metrics();

				res.writeHead(200, {
					"content-type": "text/plain; version=0.0.4; charset=utf-8",
					"content-length": Buffer.byteLength(body),
					"cache-control": "no-store",
				});
				res.end(req.method === "HEAD" ? undefined : body);

				return;
			}

			const endCall = END_CALL_PATH.exec(path);

			if (endCall?.[1] !== undefined && this.#options.endCall) {
				if (req.method !== "POST") {
					res.setHeader("allow", "POST");
					MediaNodeServer.#sendJson(req, res, 405, { error: "method_not_allowed" });

					return;
				}
				this.#endCall(req, res, endCall[1], logger);

				return;
			}

			if (this.#options.apnsRelay?.handle(req, res)) return;
			MediaNodeServer.#sendJson(req, res, 404, { error: "not_found" });
		} catch (error) {
			logger.error("http handler failed", { error });

			if (!res.headersSent) {
				MediaNodeServer.#sendJson(req, res, 500, { error: "internal_error" });
			} else {
				res.destroy();
			}
		}
	}

	#upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
		socket.on("error", () => socket.destroy());

		let path: string;

		try {
			path = new URL(req.url ?? "/", "http://localhost").pathname;
		} catch {
			path = "";
		}

		const upgrade = this.#options.upgrade;

		if (!upgrade || path !== upgrade.path) {
			socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

			return;
		}

		try {
			upgrade.handle(req, socket, head);
		} catch (error) {
			this.#logger.error("websocket upgrade failed", { error });
			socket.destroy();
		}
	}

	#endCall(req: http.IncomingMessage, res: http.ServerResponse, callId: string, logger: Logger): void {
		const options = this.#options.endCall;

		if (!options) {
			return;
		}

		const chunks: Buffer[] = [];
		let size = 0;
		let tooLarge = false;

		req.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > MAX_INTERNAL_BODY_BYTES) {
				tooLarge = true;
			} else {
				chunks.push(chunk);
			}
		});
		req.on("end", () => {
			if (tooLarge) {
				MediaNodeServer.#sendJson(req, res, 413, { error: "payload_too_large" });

				return;
			}
			if (options.secret === undefined) {
				MediaNodeServer.#sendJson(req, res, 503, { error: "not_configured" });

				return;
			}

			const header = (name: string): string | undefined => {
				const value = req.headers[name];

				return typeof value === "string" ? value : undefined;
			};
			const check = verifySignature(
				options.secret,
				header(TIMESTAMP_HEADER),
				header(SIGNATURE_HEADER),
				Buffer.concat(chunks).toString("utf8"),
			);

			if (!check.ok || header(NODE_ID_HEADER) !== options.nodeId) {
				logger.warn("unsigned or mis-signed internal request", {
					reason: check.ok ? `${NODE_ID_HEADER} does not name this node` : check.reason,
				});
				MediaNodeServer.#sendJson(req, res, 401, { error: "bad_signature" });

				return;
			}

			if (options.end(callId)) {
				logger.info("call ended by the api", { callId });
				res.writeHead(204, { "cache-control": "no-store" });
				res.end();
			} else {
				MediaNodeServer.#sendJson(req, res, 404, { error: "no_such_call" });
			}
		});
	}

	static #requestId(req: http.IncomingMessage): string | undefined {
		const value = req.headers[REQUEST_ID_HEADER];

		return typeof value === "string" && REQUEST_ID_PATTERN.test(value) ? value : undefined;
	}

	static #sendJson(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: JsonBody): void {
		const payload = JSON.stringify(body);

		res.writeHead(status, {
			"content-type": "application/json; charset=utf-8",
			"content-length": Buffer.byteLength(payload),
			"cache-control": "no-store",
		});
		res.end(req.method === "HEAD" ? undefined : payload);
	}
}
