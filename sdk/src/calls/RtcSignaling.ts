// The media node's signaling socket (`ws(s)://<node>/v1/rtc`): authenticates
// with the `bearer.<token>` subprotocol, waits for `ready`, then runs typed
// requests and delivers typed notifications. Every frame is checked with the
// schemas of protocol/src/signaling.ts.
import {
	APP_SUBPROTOCOL,
	BEARER_SUBPROTOCOL_PREFIX,
	RTC_NOTIFICATIONS,
	RTC_REQUESTS,
	type RtcErrorCode,
	type RtcMethod,
	type RtcNotificationData,
	type RtcNotificationMethod,
	type RtcRequestData,
	type RtcResponseData,
	RtcServerFrame,
} from "@secureconnect/protocol";

/** Codes of the node (`RtcErrorCode`) plus the client's own. */
export type CallErrorCode = RtcErrorCode | "CONNECTION_FAILED" | "CONNECTION_CLOSED" | "TIMEOUT" | "NO_MEDIA";

export class CallError extends Error {
	override name = "CallError";
	readonly code: CallErrorCode;
	/** The WebSocket close code, when the node closed the socket. */
	readonly closeCode: number | undefined;
	constructor(code: CallErrorCode, message: string, closeCode?: number) {
		super(message);
		this.code = code;
		this.closeCode = closeCode;
	}
}

export type RtcNotification = {
	[M in RtcNotificationMethod]: { method: M; data: RtcNotificationData<M> };
}[RtcNotificationMethod];

export interface RtcSignalingOptions {
	/** Per request, and for `ready` after opening (default 15 s). */
	timeoutMs?: number;
	/** For `ready` after opening, when it should differ from `timeoutMs` (a quick reconnect attempt). */
	openTimeoutMs?: number;
	onNotification?: (notification: RtcNotification) => void;
	onClose?: (error: CallError) => void;
}

interface Pending {
	resolve(data: unknown): void;
	reject(error: CallError): void;
	timer: ReturnType<typeof setTimeout>;
}

export class RtcSignaling {
	readonly ready: RtcNotificationData<"ready">;
	readonly #ws: WebSocket;
	readonly #pending = new Map<number, Pending>();
	readonly #timeoutMs: number;
	#nextId = 1;
	#closed = false;
	onNotification: (notification: RtcNotification) => void;
	onClose: (error: CallError) => void;

	/** Opens the socket; resolves once the node has admitted the token (`ready`), rejects with the node's error. */
	static open(url: string, token: string, options: RtcSignalingOptions = {}): Promise<RtcSignaling> {
		const timeoutMs = options.timeoutMs ?? 15_000;
		return new Promise((resolve, reject) => {
			let ws: WebSocket;
			try {
				ws = new WebSocket(url, [APP_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`]);
			} catch (error) {
				reject(new CallError("CONNECTION_FAILED", `cannot open ${url}: ${(error as Error).message}`));
				return;
			}
			let refusal: CallError | undefined;
			const early: RtcNotification[] = [];
			const timer = setTimeout(() => {
				ws.close();
				reject(new CallError("TIMEOUT", "the media node did not admit the socket in time"));
			}, options.openTimeoutMs ?? timeoutMs);
			const onMessage = (event: MessageEvent) => {
				const frame = parseFrame(event.data);
				if (frame?.type === "error") refusal = new CallError(frame.code, frame.message);
				if (frame?.type !== "notification") return;
				const notification = parseNotification(frame.method, frame.data);
				if (!notification) return;
				if (notification.method !== "ready") {
					early.push(notification);
					return;
				}
				clearTimeout(timer);
				ws.removeEventListener("message", onMessage);
				ws.removeEventListener("close", onClose);
				const signaling = new RtcSignaling(ws, notification.data, timeoutMs, options);
				resolve(signaling);
				for (const n of early) signaling.onNotification(n);
			};
			const onClose = (event: CloseEvent) => {
				clearTimeout(timer);
				reject(
					refusal
						? new CallError(refusal.code, refusal.message, event.code)
						: new CallError("CONNECTION_FAILED", `the media node closed the socket (${event.code})`, event.code),
				);
			};
			ws.addEventListener("message", onMessage);
			ws.addEventListener("close", onClose);
		});
	}

	private constructor(
		ws: WebSocket,
		ready: RtcNotificationData<"ready">,
		timeoutMs: number,
		options: RtcSignalingOptions,
	) {
		this.#ws = ws;
		this.ready = ready;
		this.#timeoutMs = timeoutMs;
		this.onNotification = options.onNotification ?? (() => {});
		this.onClose = options.onClose ?? (() => {});
		let refusal: CallError | undefined;
		ws.addEventListener("message", (event) => {
			const frame = parseFrame(event.data);
			if (!frame) return;
			if (frame.type === "error") {
				refusal = new CallError(frame.code, frame.message);
			} else if (frame.type === "notification") {
				const notification = parseNotification(frame.method, frame.data);
				if (notification) this.onNotification(notification);
			} else {
				const pending = this.#pending.get(frame.id);
				if (!pending) return;
				this.#pending.delete(frame.id);
				clearTimeout(pending.timer);
				if (frame.ok) pending.resolve(frame.data);
				else pending.reject(new CallError(frame.error.code, frame.error.message));
			}
		});
		ws.addEventListener("close", (event) => {
			const error = new CallError(
				refusal?.code ?? "CONNECTION_CLOSED",
				refusal?.message ?? `signaling closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`,
				event.code,
			);
			const wasClosed = this.#closed;
			this.#closed = true;
			for (const pending of this.#pending.values()) {
				clearTimeout(pending.timer);
				pending.reject(error);
			}
			this.#pending.clear();
			if (!wasClosed) this.onClose(error);
		});
	}

	get closed(): boolean {
		return this.#closed;
	}

	/** One request; resolves with the node's answer, checked against the method's response schema. */
	request<M extends RtcMethod>(method: M, data: RtcRequestData<M>): Promise<RtcResponseData<M>> {
		if (this.#closed) return Promise.reject(new CallError("CONNECTION_CLOSED", "signaling is closed"));
		const id = this.#nextId++;
		return new Promise<unknown>((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#pending.delete(id);
				reject(new CallError("TIMEOUT", `${method}: no answer within ${this.#timeoutMs} ms`));
			}, this.#timeoutMs);
			this.#pending.set(id, { resolve, reject, timer });
			this.#ws.send(JSON.stringify({ type: "request", id, method, data }));
		}).then((answer) => RTC_REQUESTS[method].response.parse(answer) as RtcResponseData<M>);
	}

	/** Closes the socket without telling anyone (`onClose` does not fire). */
	close(): void {
		this.#closed = true;
		this.#ws.close(1000);
	}
}

function parseFrame(raw: unknown): RtcServerFrame | undefined {
	if (typeof raw !== "string") return undefined;
	try {
		const parsed = RtcServerFrame.safeParse(JSON.parse(raw));
		return parsed.success ? parsed.data : undefined;
	} catch {
		return undefined;
	}
}

function parseNotification(method: RtcNotificationMethod, data: unknown): RtcNotification | undefined {
	const parsed = RTC_NOTIFICATIONS[method].safeParse(data);
	return parsed.success ? ({ method, data: parsed.data } as RtcNotification) : undefined;
}
