// HTTP front of the media node. For now it serves only the health check;
// WebSocket signaling will be added on this same server.
//
//   GET /health -> 200 {"status":"ok","workers":N}            (N live workers)
//               -> 503 {"status":"unavailable","workers":0}
//
// Every request is logged as one JSON line; an `x-request-id` header is
// echoed back and added to the log line as `requestId`.

import http from "node:http";
import type { AddressInfo } from "node:net";

import type { Logger } from "./Logger.ts";

export const REQUEST_ID_HEADER = "x-request-id";
/** Accepted request ids: short, printable, no spaces. Others are ignored. */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** How long close() lets in-flight requests finish before cutting them off. */
export const CLOSE_GRACE_MS = 5_000;
export const HEALTH_PATH = "/health";

/** What the health check needs to know; WorkerPool satisfies it. */
export type HealthSource = {
	readonly liveWorkerCount: number;
};

export type MediaNodeServerOptions = {
	host: string;
	port: number;
	health: HealthSource;
	logger: Logger;
};

type JsonBody = Record<string, unknown>;

export class MediaNodeServer {
	#server: http.Server;
	#health: HealthSource;
	#logger: Logger;

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
		this.#health = options.health;
		this.#logger = options.logger.child({ component: "http" });
		this.#server = http.createServer((req, res) => this.#handle(req, res));
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

				if (workers > 0) {
					MediaNodeServer.#sendJson(req, res, 200, { status: "ok", workers });
				} else {
					MediaNodeServer.#sendJson(req, res, 503, { status: "unavailable", workers });
				}

				return;
			}

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
