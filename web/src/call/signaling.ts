// The media node's signaling socket (protocol/src/signaling.ts): requests with
// ids and their responses, notifications, and the node's error frames.
import {
	RTC_CLOSE_CODES,
	type RtcMethod,
	type RtcNotificationData,
	type RtcNotificationMethod,
	type RtcRequestData,
	type RtcResponseData,
	RtcServerFrame,
} from "../../../protocol/src/signaling.ts";

const APP_SUBPROTOCOL = "secureconnect.v1";
const REQUEST_TIMEOUT_MS = 15_000;

export class RtcError extends Error {
	readonly code: string;
	constructor(code: string, message: string) {
		super(message);
		this.name = "RtcError";
		this.code = code;
	}
}

type NotificationHandler = <M extends RtcNotificationMethod>(method: M, data: RtcNotificationData<M>) => void;

export class RtcSignaling {
	readonly #ws: WebSocket;
	readonly #pending = new Map<number, { resolve: (data: unknown) => void; reject: (error: Error) => void }>();
	#nextId = 1;
	onNotification: NotificationHandler = () => {};
	/** The socket closed (code, and the node's error if it sent one). */
	onClose: (code: number, error: RtcError | undefined) => void = () => {};
	#error: RtcError | undefined;

	private constructor(ws: WebSocket) {
		this.#ws = ws;
		ws.addEventListener("message", (event) => this.#onFrame(String(event.data)));
		ws.addEventListener("close", (event) => {
			const error = this.#error ?? new RtcError("CLOSED", `The call connection closed (${event.code}).`);
			for (const pending of this.#pending.values()) pending.reject(error);
			this.#pending.clear();
			this.onClose(event.code, this.#error);
		});
	}

	/** Opens the socket with the call token and waits for the node's `ready`. */
	static open(url: string, token: string): Promise<{ signaling: RtcSignaling; ready: RtcNotificationData<"ready"> }> {
		return new Promise((resolve, reject) => {
			const ws = new WebSocket(url, [APP_SUBPROTOCOL, `bearer.${token}`]);
			const signaling = new RtcSignaling(ws);
			signaling.onNotification = (method, data) => {
				if (method === "ready") resolve({ signaling, ready: data as RtcNotificationData<"ready"> });
			};
			signaling.onClose = (code, error) =>
				reject(
					error ??
						new RtcError(
							code === RTC_CLOSE_CODES.TRY_AGAIN_LATER ? "SERVICE_UNAVAILABLE" : "CLOSED",
							"Could not connect to the call.",
						),
				);
		});
	}

	request<M extends RtcMethod>(method: M, data: RtcRequestData<M>): Promise<RtcResponseData<M>> {
		const id = this.#nextId++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#pending.delete(id);
				reject(new RtcError("TIMEOUT", `The media node did not answer ${method}.`));
			}, REQUEST_TIMEOUT_MS);
			this.#pending.set(id, {
				resolve: (value) => {
					clearTimeout(timer);
					resolve(value as RtcResponseData<M>);
				},
				reject: (error) => {
					clearTimeout(timer);
					reject(error);
				},
			});
			this.#ws.send(JSON.stringify({ type: "request", id, method, data }));
		});
	}

	close(): void {
		if (this.#ws.readyState <= WebSocket.OPEN) this.#ws.close(1000, "bye");
	}

	#onFrame(text: string): void {
		let json: unknown;
		try {
			json = JSON.parse(text);
		} catch {
			return;
		}
		const parsed = RtcServerFrame.safeParse(json);
		if (!parsed.success) return;
		const frame = parsed.data;
		if (frame.type === "response") {
			const pending = this.#pending.get(frame.id);
			if (!pending) return;
			this.#pending.delete(frame.id);
			if (frame.ok) pending.resolve(frame.data);
			else pending.reject(new RtcError(frame.error.code, frame.error.message));
		} else if (frame.type === "notification") {
			this.onNotification(frame.method, frame.data as never);
		} else {
			this.#error = new RtcError(frame.code, frame.message);
		}
	}
}
