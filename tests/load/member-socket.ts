// One member's socket to a conversation, as a client opens it: GET
// /v1/conversations/{id}/ws with the `secureconnect.v1` and `bearer.<token>`
// subprotocols. Every frame the server sends is parsed with the protocol's
// ServerFrame schema; frames sent are typed as its ClientFrame.
import { WebSocket } from "ws";
import {
	APP_SUBPROTOCOL,
	BEARER_SUBPROTOCOL_PREFIX,
	type ClientFrame,
	type Message,
	ServerFrame,
} from "../../protocol/src/index.ts";

export interface MemberSocketEvents {
	ready(lastSeq: number): void;
	message(message: Message, at: number): void;
	ack(clientId: string, seq: number, at: number): void;
	/** An error frame, a frame that does not parse, a socket error or a close the client did not ask for. */
	problem(kind: string, detail: string): void;
}

export class MemberSocket {
	#closing = false;

	readonly ws: WebSocket;

	private constructor(ws: WebSocket) {
		this.ws = ws;
	}

	static open(api: string, conversationId: string, token: string, on: MemberSocketEvents): Promise<MemberSocket> {
		const url = `${api.replace(/^http/, "ws")}/v1/conversations/${conversationId}/ws`;
		return new Promise((resolve, reject) => {
			const ws = new WebSocket(url, [APP_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`], {
				perMessageDeflate: false,
				handshakeTimeout: 60_000,
			});
			const socket = new MemberSocket(ws);
			let ready = false;
			ws.on("unexpected-response", (request, response) => {
				request.destroy();
				reject(new Error(`upgrade refused: ${response.statusCode}`));
			});
			ws.on("error", (error) => {
				if (ready) on.problem("socket error", error.message);
				else reject(error);
			});
			ws.on("close", (code, reason) => {
				if (!ready) reject(new Error(`closed before ready: ${code} ${reason.toString()}`));
				else if (!socket.#closing) on.problem("server closed a socket", `${code} ${reason.toString()}`);
			});
			ws.on("message", (data) => {
				const at = performance.now();
				let frame: ServerFrame;
				try {
					const parsed = ServerFrame.safeParse(JSON.parse(String(data)));
					if (!parsed.success) {
						return on.problem(
							"frame outside the protocol",
							`${String(data).slice(0, 200)}: ${parsed.error.message.slice(0, 200)}`,
						);
					}
					frame = parsed.data;
				} catch {
					return on.problem("frame is not JSON", String(data).slice(0, 200));
				}
				switch (frame.type) {
					case "ready":
						ready = true;
						on.ready(frame.lastSeq);
						return resolve(socket);
					case "message":
						return on.message(frame.message, at);
					case "ack":
						return on.ack(frame.clientId, frame.seq, at);
					case "error":
						return on.problem(
							`error frame ${frame.code}`,
							`${frame.message}${frame.clientId ? ` (${frame.clientId})` : ""}`,
						);
					default:
						// presence, pong, receipts: part of the conversation, not checked here
						return;
				}
			});
		});
	}

	send(frame: ClientFrame): void {
		this.ws.send(JSON.stringify(frame));
	}

	/** Drops the connection without a close handshake (the run is over). */
	drop(): void {
		this.#closing = true;
		this.ws.terminate();
	}
}
