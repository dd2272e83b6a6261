// One TURN client connection (RFC 8656) over UDP, TCP or TLS, enough to prove
// a TURN server allocates relays:
//
//   Allocate (REQUESTED-TRANSPORT udp)                       → 401 with REALM and NONCE
//   Allocate + USERNAME, REALM, NONCE, MESSAGE-INTEGRITY     → success, XOR-RELAYED-ADDRESS
//                                                              (438 Stale Nonce: once more with the new one)
//   Refresh LIFETIME 0 (same credentials)                    → success: the relay is freed
//
// The long-term key is MD5(username:realm:password). Over UDP a request is
// retransmitted (RTO 500 ms, doubling, RFC 8489 §6.2.1) until the deadline;
// over TCP/TLS messages are framed by their length. Everything must finish
// by `deadline` (ms since the epoch), else TurnError("timeout"). Errors carry
// one of the protocol's TURN_PROBE_FAILURE_REASONS.

import dgram from "node:dgram";
import dns from "node:dns";
import net from "node:net";
import tls from "node:tls";

import type { TurnUrl } from "../../protocol/src/turn.ts";
import { TurnError, type TurnFailureReason } from "./errors.ts";
import {
	decodeMessage,
	encodeMessage,
	errorCode,
	frameLength,
	longTermKey,
	newTransactionId,
	requestedTransportAttr,
	StunAttr,
	type StunAttribute,
	type StunMessage,
	StunMethod,
	stringAttr,
	stringAttribute,
	type TransportAddress,
	uint32Attr,
	uint32Attribute,
	verifyIntegrity,
	xorAddressAttribute,
} from "./stun.ts";

export const SOFTWARE = "secureconnect-turn-probe";
/** First UDP retransmission timeout (RFC 8489 §6.2.1). */
export const INITIAL_RTO_MS = 500;
/** Largest STUN message accepted over TCP/TLS. */
const MAX_FRAME_BYTES = 64 * 1024;

export type Allocation = {
	/** The relayed transport address the server allocated. */
	relayed: TransportAddress;
	/** Our address as the server saw it. */
	mapped: TransportAddress | undefined;
	/** Seconds the server granted. */
	lifetime: number | undefined;
	/** The Refresh with LIFETIME 0 succeeded. */
	released: boolean;
};

type Pending = { resolve: (message: { message: StunMessage; raw: Buffer }) => void; reject: (error: Error) => void };

/** A TURN/STUN error code → the probe's failure reason. */
export function reasonForCode(code: number | undefined): TurnFailureReason {
	switch (code) {
		case 401:
			return "unauthorized";
		case 486:
			return "quota";
		case 508:
			return "capacity";
		default:
			return "rejected";
	}
}

/** A socket error → the probe's failure reason. */
export function reasonForSocketError(error: unknown): TurnFailureReason {
	const code = (error as NodeJS.ErrnoException | undefined)?.code ?? "";

	if (code === "ECONNREFUSED") return "refused";
	if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ENODATA") return "dns";
	if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/.test(code)) {
		return "tls";
	}

	return "unreachable";
}

export class TurnClient {
	#server: TurnUrl;
	#deadline: number;
	#send: (data: Buffer) => void;
	#close: () => void;
	#pending = new Map<string, Pending>();
	#failure: TurnError | undefined;
	#closed = false;

	/** Connects (resolves the host; TCP/TLS handshake) by `deadline`. */
	static async connect(server: TurnUrl, deadline: number): Promise<TurnClient> {
		if (server.transport === "udp") {
			return await TurnClient.#connectUdp(server, deadline);
		}

		return await TurnClient.#connectStream(server, deadline);
	}

	private constructor(server: TurnUrl, deadline: number, send: (data: Buffer) => void, close: () => void) {
		this.#server = server;
		this.#deadline = deadline;
		this.#send = send;
		this.#close = close;
	}

	static async #connectUdp(server: TurnUrl, deadline: number): Promise<TurnClient> {
		const resolved = await TurnClient.#withDeadline(
			dns.promises.lookup(server.host).catch((error: unknown) => {
				throw new TurnError("dns", `cannot resolve ${server.host}: ${String(error)}`);
			}),
			deadline,
			`resolving ${server.host}`,
		);
		const socket = dgram.createSocket(resolved.family === 6 ? "udp6" : "udp4");
		const client = new TurnClient(
			server,
			deadline,
			(data) => socket.send(data, server.port, resolved.address),
			() => socket.close(),
		);

		socket.on("message", (data, from) => {
			// Only the server's answers (an unconnected socket hears anyone).
			if (from.port === server.port && from.address === resolved.address) {
				client.#receive(data, false);
			}
		});
		socket.on("error", (error) => client.#fail(new TurnError(reasonForSocketError(error), String(error))));

		return client;
	}

	static async #connectStream(server: TurnUrl, deadline: number): Promise<TurnClient> {
		const options = { host: server.host, port: server.port };
		const socket = server.secure
			? tls.connect({ ...options, ...(net.isIP(server.host) ? {} : { servername: server.host }) })
			: net.connect(options);
		const client = new TurnClient(
			server,
			deadline,
			(data) => socket.write(data),
			() => socket.destroy(),
		);
		let buffered = Buffer.alloc(0);

		socket.on("data", (chunk: Buffer) => {
			buffered = Buffer.concat([buffered, chunk]);
			for (let size = frameLength(buffered); size !== undefined && size <= buffered.length; ) {
				if (size > MAX_FRAME_BYTES || (buffered[0] ?? 0) >= 0x40) {
					// Not STUN (ChannelData never comes: the probe binds no channel).
					client.#fail(new TurnError("bad_response", "the server sent something that is not STUN"));

					return;
				}
				client.#receive(buffered.subarray(0, size), true);
				buffered = buffered.subarray(size);
				size = frameLength(buffered);
			}
		});
		socket.on("error", (error) => client.#fail(new TurnError(reasonForSocketError(error), String(error))));
		socket.on("close", () => client.#fail(new TurnError("unreachable", "the server closed the connection")));

		try {
			await TurnClient.#withDeadline(
				new Promise<void>((resolve, reject) => {
					socket.once(server.secure ? "secureConnect" : "connect", () => resolve());
					socket.once("error", (error) => reject(new TurnError(reasonForSocketError(error), String(error))));
				}),
				deadline,
				`connecting to ${server.host}:${server.port}`,
			);
		} catch (error) {
			client.close();
			throw error;
		}

		return client;
	}

	/** The whole probe: challenge, authenticated Allocate, Refresh 0. */
	async allocate(username: string, password: string): Promise<Allocation> {
		const first = await this.request(TurnClient.#allocateRequest([]));

		if (first.message.class === "success") {
			// A server without authentication (not ours): it allocated anyway.
			return await this.#finish(first.message, undefined, []);
		}

		const challenge = errorCode(first.message);

		if (challenge?.code !== 401) {
			throw new TurnError(reasonForCode(challenge?.code), `Allocate answered ${TurnClient.#describe(first.message)}`);
		}

		let realm = stringAttribute(first.message, StunAttr.REALM);
		let nonce = stringAttribute(first.message, StunAttr.NONCE);

		for (let attempt = 0; ; attempt++) {
			if (realm === undefined || nonce === undefined) {
				throw new TurnError("bad_response", "the 401 challenge has no REALM or NONCE");
			}

			const key = longTermKey(username, realm, password);
			const auth = [
				stringAttr(StunAttr.USERNAME, username),
				stringAttr(StunAttr.REALM, realm),
				stringAttr(StunAttr.NONCE, nonce),
			];
			const answer = await this.request(TurnClient.#allocateRequest(auth), key);

			if (answer.message.class === "success") {
				if (!verifyIntegrity(answer.raw, key)) {
					throw new TurnError("bad_response", "the Allocate success has no valid MESSAGE-INTEGRITY");
				}

				return await this.#finish(answer.message, key, auth);
			}

			const failure = errorCode(answer.message);

			if (failure?.code === 438 && attempt === 0) {
				// Stale Nonce: the answer carries a fresh one.
				realm = stringAttribute(answer.message, StunAttr.REALM) ?? realm;
				nonce = stringAttribute(answer.message, StunAttr.NONCE);
				continue;
			}

			throw new TurnError(
				reasonForCode(failure?.code),
				`authenticated Allocate answered ${TurnClient.#describe(answer.message)}`,
			);
		}
	}

	/** Sends a request and waits for its answer (success or error) by the deadline. */
	async request(message: StunMessage, key?: Buffer): Promise<{ message: StunMessage; raw: Buffer }> {
		if (this.#failure) {
			throw this.#failure;
		}

		const data = encodeMessage(
			message,
			key === undefined ? { fingerprint: true } : { integrityKey: key, fingerprint: true },
		);
		const id = message.transactionId.toString("hex");
		let timer: NodeJS.Timeout | undefined;
		const answer = new Promise<{ message: StunMessage; raw: Buffer }>((resolve, reject) => {
			this.#pending.set(id, { resolve, reject });
		});
		const cleanup = () => {
			clearTimeout(timer);
			this.#pending.delete(id);
		};

		if (this.#server.transport === "udp") {
			let rto = INITIAL_RTO_MS;
			const transmit = () => {
				if (this.#closed) return;
				this.#send(data);
				timer = setTimeout(transmit, rto);
				rto *= 2;
			};

			transmit();
		} else {
			this.#send(data);
		}

		try {
			return await TurnClient.#withDeadline(
				answer,
				this.#deadline,
				`waiting for the answer to ${TurnClient.#name(message)}`,
			);
		} finally {
			cleanup();
		}
	}

	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#fail(new TurnError("unreachable", "closed"));
		try {
			this.#close();
		} catch {
			// already closed
		}
	}

	async #finish(success: StunMessage, key: Buffer | undefined, auth: StunAttribute[]): Promise<Allocation> {
		const relayed = xorAddressAttribute(success, StunAttr.XOR_RELAYED_ADDRESS);

		if (!relayed) {
			throw new TurnError("bad_response", "the Allocate success has no XOR-RELAYED-ADDRESS");
		}

		return {
			relayed,
			mapped: xorAddressAttribute(success, StunAttr.XOR_MAPPED_ADDRESS),
			lifetime: uint32Attribute(success, StunAttr.LIFETIME),
			released: await this.#release(key, auth),
		};
	}

	/** Refresh with LIFETIME 0 frees the allocation now instead of at its expiry; never throws. */
	async #release(key: Buffer | undefined, auth: StunAttribute[]): Promise<boolean> {
		let attributes = auth;

		try {
			for (let attempt = 0; attempt < 2; attempt++) {
				const answer = await this.request(
					{
						method: StunMethod.refresh,
						class: "request",
						transactionId: newTransactionId(),
						attributes: [uint32Attr(StunAttr.LIFETIME, 0), ...attributes, stringAttr(StunAttr.SOFTWARE, SOFTWARE)],
					},
					key,
				);

				if (answer.message.class === "success") {
					return true;
				}

				const nonce = stringAttribute(answer.message, StunAttr.NONCE);

				if (errorCode(answer.message)?.code !== 438 || nonce === undefined) {
					return false;
				}
				attributes = attributes.map((a) => (a.type === StunAttr.NONCE ? stringAttr(StunAttr.NONCE, nonce) : a));
			}
		} catch {
			// The allocation expires by itself (LIFETIME).
		}

		return false;
	}

	#receive(data: Buffer, fatal: boolean): void {
		let message: StunMessage;

		try {
			message = decodeMessage(data);
		} catch (error) {
			if (fatal) {
				this.#fail(new TurnError("bad_response", `undecodable STUN message: ${String(error)}`));
			}

			return;
		}

		if (message.class !== "success" && message.class !== "error") {
			return;
		}

		this.#pending.get(message.transactionId.toString("hex"))?.resolve({ message, raw: data });
	}

	#fail(error: TurnError): void {
		this.#failure ??= error;
		for (const pending of this.#pending.values()) {
			pending.reject(this.#failure);
		}
		this.#pending.clear();
	}

	static #allocateRequest(auth: StunAttribute[]): StunMessage {
		return {
			method: StunMethod.allocate,
			class: "request",
			transactionId: newTransactionId(),
			attributes: [requestedTransportAttr(), ...auth, stringAttr(StunAttr.SOFTWARE, SOFTWARE)],
		};
	}

	static #name(message: StunMessage): string {
		return message.method === StunMethod.allocate
			? "Allocate"
			: message.method === StunMethod.refresh
				? "Refresh"
				: "request";
	}

	static #describe(message: StunMessage): string {
		const error = errorCode(message);

		return error ? `${error.code} ${error.reason}`.trim() : message.class;
	}

	static async #withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
		let timer: NodeJS.Timeout | undefined;
		const timeout = new Promise<never>((_, reject) => {
			timer = setTimeout(
				() => reject(new TurnError("timeout", `timed out ${what}`)),
				Math.max(0, deadline - Date.now()),
			);
		});

		try {
			return await Promise.race([promise, timeout]);
		} finally {
			clearTimeout(timer);
		}
	}
}
