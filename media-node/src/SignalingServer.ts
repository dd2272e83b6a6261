// The signaling WebSocket (`/v1/rtc`): authentication, frame parsing, request
// dispatch to the peer's Room, and notifications back.
//
// Authentication works like the api's sockets: a `bearer.<token>` entry in
// Sec-WebSocket-Protocol (the server selects `secureconnect.v1` when that is
// offered too, else echoes the bearer entry), or a first frame
// `{type:"auth", token}` within RTC_AUTH_TIMEOUT_MS. Refusals send
// `{type:"error", code, message}` and close with the code from
// RTC_CLOSE_CODES; the close reason is the error code. Once admitted, the
// socket gets a `ready` notification.
//
// Each socket's frames are handled one at a time, in order (requests queued
// behind authentication), with a per-socket rate limit. Tokens are never
// logged.

import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { Duplex } from "node:stream";

import type { WebSocket } from "ws";
import { WebSocketServer } from "ws";

import {
	isRtcMethod,
	RTC_AUTH_TIMEOUT_MS,
	RTC_CLOSE_CODES,
	RTC_MAX_FRAME_BYTES,
	RTC_REQUESTS,
	RtcClientFrame,
	type RtcErrorCode,
	type RtcNotificationData,
	type RtcNotificationMethod,
	type RtcServerFrame,
} from "../../protocol/src/signaling.ts";
import type { TokenVerifier } from "./CallTokenVerifier.ts";
import { RtcError } from "./errors.ts";
import type { Logger } from "./Logger.ts";
import type { Peer, PeerConnection } from "./Peer.ts";
import type { Room } from "./Room.ts";
import type { RoomRegistry } from "./RoomRegistry.ts";

export const PING_INTERVAL_MS = 15_000;
/** Sockets (authenticated or not) one node holds at most. */
export const DEFAULT_MAX_SOCKETS = 5_000;
/** A socket whose unsent data exceeds this is too slow to follow the call. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** Requests a socket may burst, and how many it earns back per second. */
export const RATE_BURST = 100;
export const RATE_PER_SECOND = 50;
export const MAX_QUEUED_FRAMES = 200;
/** After close(), a peer that does not finish the closing handshake is cut off after this long. */
export const CLOSE_HANDSHAKE_MS = 3_000;
/** Same values as the api's sockets (protocol/src/realtime.ts). */
export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";
export const APP_SUBPROTOCOL = "secureconnect.v1";

export type SignalingServerOptions = {
	/** Undefined when no JWKS is configured: every socket is refused (fail closed). */
	verifier: TokenVerifier | undefined;
	rooms: RoomRegistry;
	nodeId: string;
	logger: Logger;
	pingIntervalMs?: number;
	maxSockets?: number;
};

export type SignalingStats = {
	sockets: number;
	requests: number;
	requestErrors: number;
	authFailures: Partial<Record<RtcErrorCode, number>>;
};

/** Reads `bearer.<token>` from Sec-WebSocket-Protocol, as the api does. */
export function tokenFromProtocols(header: string | undefined): string | undefined {
	const bearer = (header ?? "")
		.split(",")
		.map((p) => p.trim())
		.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));

	return bearer?.slice(BEARER_SUBPROTOCOL_PREFIX.length) || undefined;
}

function selectProtocol(protocols: Set<string>): string | false {
	if (protocols.has(APP_SUBPROTOCOL)) {
		return APP_SUBPROTOCOL;
	}
	for (const protocol of protocols) {
		if (protocol.startsWith(BEARER_SUBPROTOCOL_PREFIX)) {
			return protocol;
		}
	}

	return false;
}

const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

function requestIdOf(req: http.IncomingMessage): string {
	const header = req.headers["x-request-id"];

	if (typeof header === "string" && REQUEST_ID_PATTERN.test(header)) {
		return header;
	}

	// W3C traceparent: version-traceid-parentid-flags; the trace id is the request id.
	const traceparent = req.headers.traceparent;
	const traceId = typeof traceparent === "string" ? /^[0-9a-f]{2}-([0-9a-f]{32})-/.exec(traceparent)?.[1] : undefined;

	return traceId ?? randomUUID();
}

/** Maps what a handler threw to what the client is told. */
function toRtcError(error: unknown): RtcError {
	if (error instanceof RtcError) {
		return error;
	}
	if (error instanceof TypeError) {
		// mediasoup's validation of RTP/DTLS parameters.
		return new RtcError("BAD_REQUEST", error.message.slice(0, 300));
	}
	if (error instanceof Error && (error.name === "InvalidStateError" || error.name === "UnsupportedError")) {
		return new RtcError(error.name === "InvalidStateError" ? "CONFLICT" : "BAD_REQUEST", error.message.slice(0, 300));
	}

	return new RtcError("INTERNAL_ERROR", "The media node could not handle this request.");
}

type SocketState = "awaiting-auth" | "authenticating" | "open" | "closed";

class RtcSocket implements PeerConnection {
	readonly id = randomUUID();
	readonly requestId: string;
	logger: Logger;
	state: SocketState = "awaiting-auth";
	peer: Peer | undefined;
	room: Room | undefined;
	alive = true;
	authTimer: NodeJS.Timeout | undefined;
	#ws: WebSocket;
	#queue: Promise<void> = Promise.resolve();
	#queued = 0;
	#tokens = RATE_BURST;
	#refilledAt = Date.now();
	#killTimer: NodeJS.Timeout | undefined;

	constructor(ws: WebSocket, requestId: string, logger: Logger) {
		this.#ws = ws;
		this.requestId = requestId;
		this.logger = logger.child({ requestId, socketId: this.id });
	}

	get open(): boolean {
		return this.state !== "closed" && this.#ws.readyState === this.#ws.OPEN;
	}

	send(frame: RtcServerFrame): void {
		if (!this.open) {
			return;
		}
		if (this.#ws.bufferedAmount > MAX_BUFFERED_BYTES) {
			this.logger.warn("socket too slow, closing", { bufferedBytes: this.#ws.bufferedAmount });
			this.close(RTC_CLOSE_CODES.TRY_AGAIN_LATER, "SLOW_CONSUMER");

			return;
		}
		this.#ws.send(JSON.stringify(frame));
	}

	notify<M extends RtcNotificationMethod>(method: M, data: RtcNotificationData<M>): void {
		this.send({ type: "notification", method, data });
	}

	fail(error: RtcError): void {
		this.send({ type: "error", code: error.code, message: error.message });
		this.close(error.closeCode ?? RTC_CLOSE_CODES.POLICY_VIOLATION, error.code);
	}

	close(code: number, reason: string): void {
		if (this.#ws.readyState === this.#ws.CLOSED) {
			return;
		}
		clearTimeout(this.authTimer);
		this.#ws.close(code, reason.slice(0, 120));
		this.#killTimer ??= setTimeout(() => this.#ws.terminate(), CLOSE_HANDSHAKE_MS);
		this.#killTimer.unref();
	}

	terminate(): void {
		this.#ws.terminate();
	}

	ping(): void {
		if (!this.alive) {
			this.logger.info("socket unresponsive, terminating");
			this.#ws.terminate();

			return;
		}
		this.alive = false;
		this.#ws.ping();
	}

	closed(): void {
		this.state = "closed";
		clearTimeout(this.authTimer);
		clearTimeout(this.#killTimer);
	}

	/** Takes one request token; false when the socket is over its rate. */
	takeToken(): boolean {
		const now = Date.now();

		this.#tokens = Math.min(RATE_BURST, this.#tokens + ((now - this.#refilledAt) / 1000) * RATE_PER_SECOND);
		this.#refilledAt = now;
		if (this.#tokens < 1) {
			return false;
		}
		this.#tokens -= 1;

		return true;
	}

	/** Runs `task` after every earlier one; false when too much is queued. */
	enqueue(task: () => Promise<void>): boolean {
		if (this.#queued >= MAX_QUEUED_FRAMES) {
			return false;
		}
		this.#queued++;
		this.#queue = this.#queue
			.then(() => (this.state === "closed" ? undefined : task()))
			.catch((error: unknown) => this.logger.error("socket task failed", { error }))
			.finally(() => {
				this.#queued--;
			});

		return true;
	}
}

export class SignalingServer {
	#options: SignalingServerOptions;
	#logger: Logger;
	#wss: WebSocketServer;
	#sockets = new Set<RtcSocket>();
	#pingTimer: NodeJS.Timeout;
	#stats = { requests: 0, requestErrors: 0 };
	#authFailures: Partial<Record<RtcErrorCode, number>> = {};

	static create(options: SignalingServerOptions): SignalingServer {
		return new SignalingServer(options);
	}

	private constructor(options: SignalingServerOptions) {
		this.#options = options;
		this.#logger = options.logger.child({ component: "signaling" });
		this.#wss = new WebSocketServer({
			noServer: true,
			maxPayload: RTC_MAX_FRAME_BYTES,
			perMessageDeflate: false,
			handleProtocols: (protocols) => selectProtocol(protocols),
		});
		this.#pingTimer = setInterval(() => {
			for (const socket of this.#sockets) {
				socket.ping();
			}
		}, options.pingIntervalMs ?? PING_INTERVAL_MS);
		this.#pingTimer.unref();
	}

	stats(): SignalingStats {
		return { sockets: this.#sockets.size, ...this.#stats, authFailures: { ...this.#authFailures } };
	}

	/** Completes a WebSocket upgrade of `/v1/rtc`. */
	handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
		const requestId = requestIdOf(req);
		const maxSockets = this.#options.maxSockets ?? DEFAULT_MAX_SOCKETS;

		if (this.#sockets.size >= maxSockets) {
			this.#logger.warn("socket refused: too many sockets", { requestId, sockets: this.#sockets.size });
			socket.end(
				"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			);

			return;
		}

		const token = tokenFromProtocols(req.headers["sec-websocket-protocol"]);

		this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onSocket(ws, token, requestId));
	}

	/** Closes every socket (their peers' calls must be closed first) and stops pinging. */
	close(code: number = RTC_CLOSE_CODES.GOING_AWAY, reason = "shutting down"): void {
		clearInterval(this.#pingTimer);
		for (const socket of this.#sockets) {
			socket.close(code, reason);
		}
	}

	/** Closes every socket, waits up to `timeoutMs` for the closing handshakes, then cuts off the rest. */
	async shutdown(
		timeoutMs: number,
		code: number = RTC_CLOSE_CODES.GOING_AWAY,
		reason = "shutting down",
	): Promise<void> {
		this.close(code, reason);

		const deadline = Date.now() + timeoutMs;

		while (this.#sockets.size > 0 && Date.now() < deadline) {
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
		this.terminate();
	}

	/** Cuts every remaining socket off at once. */
	terminate(): void {
		clearInterval(this.#pingTimer);
		for (const socket of this.#sockets) {
			socket.terminate();
		}
	}

	#onSocket(ws: WebSocket, token: string | undefined, requestId: string): void {
		const socket = new RtcSocket(ws, requestId, this.#logger);

		this.#sockets.add(socket);

		ws.on("pong", () => {
			socket.alive = true;
		});
		ws.on("error", (error) => socket.logger.debug("socket error", { error: error.message }));
		ws.on("close", (code, reason) => this.#onClose(socket, code, reason.toString("utf8")));
		ws.on("message", (raw, isBinary) => this.#onMessage(socket, raw, isBinary));

		if (this.#options.rooms.draining) {
			this.#refuse(
				socket,
				new RtcError(
					"DRAINING",
					"This media node is shutting down; ask the api to join again.",
					RTC_CLOSE_CODES.TRY_AGAIN_LATER,
				),
			);

			return;
		}

		if (token !== undefined) {
			socket.state = "authenticating";
			socket.enqueue(() => this.#authenticate(socket, token));

			return;
		}

		socket.authTimer = setTimeout(() => {
			if (socket.state === "awaiting-auth") {
				this.#refuse(
					socket,
					new RtcError(
						"AUTH_TIMEOUT",
						`Authenticate within ${RTC_AUTH_TIMEOUT_MS / 1000} s: send {"type":"auth","token":…} or use the bearer subprotocol.`,
						RTC_CLOSE_CODES.AUTH_TIMEOUT,
					),
				);
			}
		}, RTC_AUTH_TIMEOUT_MS);
		socket.authTimer.unref();
	}

	#onMessage(socket: RtcSocket, raw: WebSocket.RawData, isBinary: boolean): void {
		if (socket.state === "closed") {
			return;
		}
		if (isBinary) {
			socket.fail(new RtcError("BAD_REQUEST", "Frames are JSON text.", RTC_CLOSE_CODES.POLICY_VIOLATION));

			return;
		}

		let json: unknown;

		try {
			json = JSON.parse(raw.toString());
		} catch {
			this.#badFrame(socket, "A frame is not valid JSON.");

			return;
		}

		const parsed = RtcClientFrame.safeParse(json);

		if (!parsed.success) {
			this.#badFrame(socket, 'Expected {type:"request", id, method, data} or {type:"auth", token}.');

			return;
		}

		const frame = parsed.data;

		if (frame.type === "auth") {
			if (socket.state !== "awaiting-auth") {
				this.#badFrame(socket, "This socket is already authenticated.");

				return;
			}
			clearTimeout(socket.authTimer);
			socket.state = "authenticating";
			socket.enqueue(() => this.#authenticate(socket, frame.token));

			return;
		}

		if (socket.state === "awaiting-auth") {
			this.#refuse(
				socket,
				new RtcError("UNAUTHORIZED", "Authenticate before sending requests.", RTC_CLOSE_CODES.UNAUTHORIZED),
			);

			return;
		}

		if (!socket.takeToken() || !socket.enqueue(() => this.#request(socket, frame.id, frame.method, frame.data))) {
			this.#stats.requestErrors++;
			socket.send({
				type: "response",
				id: frame.id,
				ok: false,
				error: { code: "RATE_LIMITED", message: "Too many requests; slow down." },
			});
		}
	}

	/** A malformed frame: fatal before authentication, an error frame after. */
	#badFrame(socket: RtcSocket, message: string): void {
		if (socket.state === "open") {
			socket.send({ type: "error", code: "BAD_REQUEST", message });
		} else {
			this.#refuse(socket, new RtcError("BAD_REQUEST", message, RTC_CLOSE_CODES.POLICY_VIOLATION));
		}
	}

	#refuse(socket: RtcSocket, error: RtcError): void {
		this.#authFailures[error.code] = (this.#authFailures[error.code] ?? 0) + 1;
		socket.logger.info("socket refused", { code: error.code, reason: error.message });
		socket.fail(error);
	}

	async #authenticate(socket: RtcSocket, token: string): Promise<void> {
		const verifier = this.#options.verifier;

		try {
			if (!verifier) {
				throw new RtcError(
					"SERVICE_UNAVAILABLE",
					"This media node has no api key set to verify call tokens (API_URL / MEDIA_JWKS_URL unset).",
					RTC_CLOSE_CODES.TRY_AGAIN_LATER,
				);
			}

			const claims = await verifier.verify(token);

			// The api request that issued the token becomes the socket's request id.
			socket.logger = socket.logger.child({
				callId: claims.callId,
				userId: claims.userId,
				...(claims.requestId === undefined ? {} : { requestId: claims.requestId }),
			});

			const { room, peer } = await this.#options.rooms.admit(claims, socket);

			if (!socket.open) {
				// Gone while being admitted.
				socket.state = "closed";
				room.connectionClosed(peer, socket);

				return;
			}

			socket.room = room;
			socket.peer = peer;
			socket.state = "open";
			socket.notify("ready", {
				peerId: peer.id,
				callId: claims.callId,
				nodeId: this.#options.nodeId,
				permissions: peer.permissions,
			});
			socket.logger.info("socket admitted", { permissions: peer.permissions, peers: room.peerCount });
		} catch (error) {
			const rtcError =
				error instanceof RtcError
					? error
					: new RtcError(
							"INTERNAL_ERROR",
							"The media node could not admit this socket.",
							RTC_CLOSE_CODES.TRY_AGAIN_LATER,
						);

			if (!(error instanceof RtcError)) {
				socket.logger.error("admission failed", { error });
			}
			this.#refuse(
				socket,
				rtcError.closeCode === undefined
					? new RtcError(rtcError.code, rtcError.message, RTC_CLOSE_CODES.UNAUTHORIZED)
					: rtcError,
			);
		}
	}

	async #request(socket: RtcSocket, id: number, method: string, rawData: unknown): Promise<void> {
		const started = performance.now();
		const { room, peer } = socket;

		this.#stats.requests++;

		try {
			if (!room || !peer) {
				throw new RtcError("UNAUTHORIZED", "Not authenticated.");
			}
			if (!isRtcMethod(method)) {
				throw new RtcError("BAD_REQUEST", `Unknown method "${method.slice(0, 64)}".`);
			}

			const parsed = RTC_REQUESTS[method].request.safeParse(rawData ?? {});

			if (!parsed.success) {
				const detail = parsed.error.issues
					.slice(0, 3)
					.map((issue) => `${issue.path.join(".") || "data"}: ${issue.message}`)
					.join("; ");

				throw new RtcError("BAD_REQUEST", `Invalid "${method}" data: ${detail}`);
			}

			const result = await room.handle(peer, method, parsed.data);

			socket.send({ type: "response", id, ok: true, data: result.data });
			result.after?.();
			socket.logger.debug("rtc request", { method, id, ok: true, durationMs: performance.now() - started });
		} catch (error) {
			const rtcError = toRtcError(error);

			this.#stats.requestErrors++;
			socket.send({ type: "response", id, ok: false, error: { code: rtcError.code, message: rtcError.message } });

			const fields = { method, id, ok: false, code: rtcError.code, durationMs: performance.now() - started };

			if (rtcError.code === "INTERNAL_ERROR") {
				socket.logger.error("rtc request failed", { ...fields, error });
			} else {
				socket.logger.info("rtc request refused", { ...fields, reason: rtcError.message });
			}
		}
	}

	#onClose(socket: RtcSocket, code: number, reason: string): void {
		const wasOpen = socket.state === "open";

		socket.closed();
		this.#sockets.delete(socket);

		if (socket.room && socket.peer) {
			socket.room.connectionClosed(socket.peer, socket);
		}
		if (wasOpen) {
			socket.logger.info("socket closed", { code, reason });
		} else {
			socket.logger.debug("socket closed", { code, reason });
		}
	}
}
