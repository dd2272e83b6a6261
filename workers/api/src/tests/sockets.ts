import { SELF } from "cloudflare:test";
import type { ServerFrame, SingleServerFrame } from "@secureconnect/protocol";
import { call } from "./helpers.ts";

type Frame = SingleServerFrame;

/** A client socket for tests: collects frames (a batch unpacked), waits for the ones a test expects. */
export class TestSocket {
	readonly frames: Frame[] = [];
	/** Each WebSocket message as it came, a batch still whole. */
	readonly received: ServerFrame[] = [];
	/** The subprotocol the server selected ("" for none). */
	readonly protocol: string;
	closed: { code: number; reason: string } | undefined;
	readonly #ws: WebSocket;
	#waiters: Array<() => void> = [];

	private constructor(ws: WebSocket, protocol: string) {
		this.#ws = ws;
		this.protocol = protocol;
		ws.addEventListener("message", (e) => {
			const frame = JSON.parse(String(e.data)) as ServerFrame;
			this.received.push(frame);
			if (frame.type === "batch") this.frames.push(...frame.frames);
			else this.frames.push(frame);
			this.#wake();
		});
		ws.addEventListener("close", (e) => {
			this.closed = { code: e.code, reason: e.reason };
			this.#wake();
		});
	}

	static async open(path: string, token?: string, protocols?: string[]): Promise<TestSocket> {
		const headers: Record<string, string> = { upgrade: "websocket" };
		const offered = protocols ?? (token ? [`bearer.${token}`] : []);
		if (offered.length) headers["sec-websocket-protocol"] = offered.join(", ");
		const res = await SELF.fetch(`http://api.test${path}`, { headers });
		if (!res.webSocket) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
		res.webSocket.accept();
		return new TestSocket(res.webSocket, res.headers.get("sec-websocket-protocol") ?? "");
	}

	/** The status and body an upgrade is refused with. */
	static async refusal(path: string, token?: string): Promise<{ status: number; body: { error?: { code: string } } }> {
		const headers: Record<string, string> = { upgrade: "websocket" };
		if (token) headers["sec-websocket-protocol"] = `bearer.${token}`;
		const res = await SELF.fetch(`http://api.test${path}`, { headers });
		if (res.webSocket) throw new Error("upgrade was accepted");
		return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
	}

	#wake(): void {
		const waiters = this.#waiters;
		this.#waiters = [];
		for (const w of waiters) w();
	}

	send(frame: unknown): void {
		this.#ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
	}

	close(): void {
		this.#ws.close(1000, "done");
	}

	/** Waits for the first frame (from `from` on) matching; returns it. */
	async next<T extends Frame["type"]>(
		type: T,
		predicate: (f: Extract<Frame, { type: T }>) => boolean = () => true,
		timeoutMs = 5_000,
		from = 0,
	): Promise<Extract<Frame, { type: T }>> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const found = this.frames
				.slice(from)
				.find((f): f is Extract<Frame, { type: T }> => f.type === type && predicate(f as Extract<Frame, { type: T }>));
			if (found) return found;
			if (this.closed)
				throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) before a ${type} frame`);
			const left = deadline - Date.now();
			if (left <= 0)
				throw new Error(`no ${type} frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
	}

	async waitClosed(timeoutMs = 5_000): Promise<{ code: number; reason: string }> {
		const deadline = Date.now() + timeoutMs;
		while (!this.closed) {
			if (Date.now() > deadline) throw new Error("socket did not close");
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, 50);
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
		return this.closed;
	}

	messages(): Array<Extract<Frame, { type: "message" }>["message"]> {
		return this.frames
			.filter((f) => f.type === "message")
			.map((f) => (f as Extract<Frame, { type: "message" }>).message);
	}
}

export function b64(text: string): string {
	return btoa(text);
}

export async function createGroup(token: string, memberIds: string[], title = "Group"): Promise<string> {
	const res = await call<{ conversation: { id: string } }>("/v1/conversations", {
		token,
		body: { type: "group", memberIds, title },
	});
	if (res.status !== 201) throw new Error(`create group: ${res.status} ${JSON.stringify(res.body)}`);
	return res.body.conversation.id;
}
