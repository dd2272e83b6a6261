// A conversation socket that authenticates with the bearer subprotocol,
// resumes from the last seq it saw after every reconnect, and backs off.
import {
	APP_SUBPROTOCOL,
	BATCH_SUBPROTOCOL,
	BEARER_SUBPROTOCOL_PREFIX,
	type ClientFrame,
	type Message,
	ServerFrame,
	type SingleServerFrame,
} from "@secureconnect/protocol";

export interface WebSocketLike {
	send(data: string): void;
	close(code?: number, reason?: string): void;
	addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
	addEventListener(type: "close", listener: (event: { code: number }) => void): void;
}

export type SocketConnector = (url: string, protocols: string[]) => Promise<WebSocketLike>;

export const RECONNECT_BASE_MS = 250;
export const RECONNECT_MAX_MS = 15_000;
export const HEARTBEAT_MS = 25_000;

const defaultConnect: SocketConnector = (url, protocols) =>
	new Promise((resolve, reject) => {
		const ws = new WebSocket(url, protocols);
		ws.addEventListener("open", () => resolve(ws as unknown as WebSocketLike), { once: true });
		ws.addEventListener("error", () => reject(new Error("socket failed to open")), { once: true });
	});

export interface ConversationSocketOptions {
	url: string;
	token: () => Promise<string>;
	afterSeq: () => number;
	onMessage: (message: Message) => Promise<void> | void;
	/** Every other frame (typing, receipt, presence, ack, error…), as it arrives; a batch arrives unpacked. */
	onEvent?: (frame: SingleServerFrame) => void;
	connect?: SocketConnector;
}

export class ConversationSocket {
	readonly #options: ConversationSocketOptions;
	#ws: WebSocketLike | undefined;
	#closed = false;
	#attempt = 0;
	#heartbeat: ReturnType<typeof setInterval> | undefined;
	#queue: Promise<void> = Promise.resolve();
	readonly ready: Promise<void>;
	#markReady: () => void = () => {};

	constructor(options: ConversationSocketOptions) {
		this.#options = options;
		this.ready = new Promise((resolve) => {
			this.#markReady = resolve;
		});
		void this.#open();
	}

	async #open(): Promise<void> {
		if (this.#closed) return;
		try {
			const token = await this.#options.token();
			const ws = await (this.#options.connect ?? defaultConnect)(this.#options.url, [
				BATCH_SUBPROTOCOL,
				APP_SUBPROTOCOL,
				`${BEARER_SUBPROTOCOL_PREFIX}${token}`,
			]);
			this.#ws = ws;
			this.#attempt = 0;
			ws.addEventListener("message", (event) => {
				if (this.#ws === ws) this.#onFrame(String(event.data));
			});
			ws.addEventListener("close", () => {
				if (this.#ws === ws) this.#onClose();
			});
			this.#heartbeat = setInterval(() => ws.send('{"type":"ping"}'), HEARTBEAT_MS);
		} catch {
			this.#onClose();
		}
	}

	#onFrame(text: string): void {
		const parsed = ServerFrame.safeParse(JSON.parse(text));
		if (!parsed.success) return;
		if (parsed.data.type === "batch") for (const frame of parsed.data.frames) this.#apply(frame);
		else this.#apply(parsed.data);
	}

	#apply(frame: SingleServerFrame): void {
		if (frame.type === "ready") this.#ws?.send(JSON.stringify({ type: "resume", afterSeq: this.#options.afterSeq() }));
		if (frame.type === "resumed") this.#markReady();
		if (frame.type === "message") {
			// Messages are applied strictly in arrival (= seq) order.
			this.#queue = this.#queue.then(() => this.#options.onMessage(frame.message)).catch(() => {});
		} else this.#options.onEvent?.(frame);
	}

	/** Sends a frame (typing, read, presence…) if connected; false while reconnecting. */
	sendFrame(frame: ClientFrame): boolean {
		if (!this.#ws) return false;
		this.#ws.send(JSON.stringify(frame));
		return true;
	}

	#onClose(): void {
		if (this.#heartbeat) clearInterval(this.#heartbeat);
		this.#ws = undefined;
		if (this.#closed) return;
		const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
		setTimeout(() => void this.#open(), delay);
	}

	/** Drops the connection as a network failure would; the socket reconnects and resumes. */
	interrupt(): void {
		const ws = this.#ws;
		if (!ws) return;
		this.#onClose();
		ws.close(4000, "interrupted");
	}

	/** Settles once all received messages have been applied. */
	async drained(): Promise<void> {
		await this.#queue;
	}

	close(): void {
		this.#closed = true;
		this.#ws?.close(1000, "closed");
	}
}
