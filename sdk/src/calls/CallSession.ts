// A browser call client over the SFU: mediasoup-client driven by the media
// node's signaling (protocol/src/signaling.ts). One send transport for the
// microphone, the camera (simulcast) and a screen share; one receive transport
// on which the node announces a consumer per remote producer.
//
//   const session = await CallSession.join({ ...joinInfo, on: { trackAdded: (t) => show(t) } });
//   await session.setMicrophoneMuted(true);
//   await session.leave();
//
// `joinInfo` is what POST /v1/calls or POST /v1/calls/{id}/join answers.
//
// Reconnects. A dropped socket is reopened to the same node for
// `reconnect.sameNodeMs` (the node keeps the participant's place, transports
// and producers for its reconnect grace, so a blip only re-creates the
// consumers). Past that, or when the node shuts down or drains, a session
// given `rejoin` (your POST /v1/calls/{id}/join) asks the api where the call
// runs: the api moves a call off a dead node, so the answer may name another
// node, where the session publishes the same tracks and consumes the others
// again. `reconnecting` and `reconnected` tell the app; the session ends
// ("disconnected") only when nothing worked within `reconnect.giveUpMs`.
// Call `reconnect()` when the user channel says the call moved.
import {
	type CallEndReason,
	type IceServer,
	type MediaKind,
	type MediaSource,
	type PeerInfo,
	RTC_CLOSE_CODES,
	type RtcNotificationData,
} from "@secureconnect/protocol";
import { Device, type types } from "mediasoup-client";
import { CallError, type RtcNotification, RtcSignaling } from "./RtcSignaling.ts";
import { type CallStats, type InboundStats, inboundOf, selectedPath, summarize, type TransportStats } from "./stats.ts";

export { CallError, type CallErrorCode } from "./RtcSignaling.ts";
export type { CallStats } from "./stats.ts";

export interface RemoteTrack {
	consumerId: string;
	producerId: string;
	peerId: string;
	kind: MediaKind;
	source: MediaSource;
	track: MediaStreamTrack;
	/** The sender has muted it. */
	paused: boolean;
}

export interface CallEvents {
	participantJoined: { participant: PeerInfo };
	participantLeft: { peerId: string };
	trackAdded: RemoteTrack;
	trackRemoved: RemoteTrack;
	activeSpeaker: { peerId: string | null };
	/** A remote or local producer was muted or unmuted. */
	muteChanged: { peerId: string; source: MediaSource; muted: boolean };
	connectionStateChanged: { direction: "send" | "recv"; state: types.ConnectionState };
	/** A STUN/TURN server could not be used (e.g. 401: TURN refused the credentials). */
	iceError: { direction: "send" | "recv"; url: string; errorCode: number; errorText: string };
	/** The node is shutting down: join again through the api before `deadline` (a session with `rejoin` does). */
	draining: { deadline: string };
	/** The session lost its node (or is leaving it) and is getting back into the call; media pauses meanwhile. */
	reconnecting: { reason: ReconnectReason; error?: CallError };
	/** Back in the call: on the same node (`moved` false; `resumed` when the node had kept its transports) or another. */
	reconnected: { url: string; moved: boolean; resumed: boolean };
	/** The session is over; `error` says why when it was not `leave()`. */
	ended: { reason: CallEndReason | "left" | "disconnected"; error?: CallError };
}

export type CallListeners = { [K in keyof CallEvents]: (event: CallEvents[K]) => void };

/** Why a session reconnects: its socket dropped, the node closed the call for its own reasons, it drains, or `reconnect()`. */
export type ReconnectReason = "disconnected" | "node-shutdown" | "media-failure" | "draining" | "moved";

/** Where to (re)join: what POST /v1/calls/{id}/join answers in `join`. */
export interface NodeJoin {
	url: string;
	token: string;
	iceServers?: readonly IceServer[];
}

export interface CallJoinOptions {
	/** `join.url`: the media node's WebSocket. */
	url: string;
	/** `join.token`: the call token. */
	token: string;
	/** Passed to the browser's RTCPeerConnection (`join.iceServers` or GET /v1/turn/credentials). */
	iceServers?: readonly IceServer[];
	/** "relay" forces every path through TURN. */
	iceTransportPolicy?: "all" | "relay";
	displayName?: string;
	/** What to publish on join (default microphone and camera, as the token permits); constraints for getUserMedia. */
	publish?: { audio?: boolean | MediaTrackConstraints; video?: boolean | MediaTrackConstraints };
	/** Simulcast layers of the camera, lowest first. */
	simulcast?: types.RtpEncodingParameters[];
	/** Listeners in place before anything happens, so the participants and tracks present at join are seen too. */
	on?: Partial<CallListeners>;
	requestTimeoutMs?: number;
	/**
	 * Asks the api for a fresh join (POST /v1/calls/{id}/join, its `join`).
	 * With it the session outlives its media node (see the file comment).
	 * Resolve `undefined` when the call is over (404, 409): the session ends.
	 * Rejections are retried until `reconnect.giveUpMs`.
	 */
	rejoin?: () => Promise<NodeJoin | undefined>;
	reconnect?: {
		/** How long to retry the same node before asking `rejoin` (default 3 s). */
		sameNodeMs?: number;
		/** When to stop trying and end the session as "disconnected" (default 60 s). */
		giveUpMs?: number;
	};
}

export const DEFAULT_SAME_NODE_MS = 3_000;
export const DEFAULT_GIVE_UP_MS = 60_000;
/** After a move, how long a participant not on the new node yet still counts as in the call. */
export const ABSENT_AFTER_MOVE_MS = 20_000;
/** Close codes after which reconnecting would not help: refused, replaced by another socket, full. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
	RTC_CLOSE_CODES.UNAUTHORIZED,
	RTC_CLOSE_CODES.FORBIDDEN,
	RTC_CLOSE_CODES.REPLACED,
	RTC_CLOSE_CODES.CALL_FULL,
]);
const TOKEN_REFUSALS: ReadonlySet<string> = new Set(["INVALID_TOKEN", "TOKEN_EXPIRED", "UNAUTHORIZED"]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A published source: its track (which outlives producers), layers and mute state. */
interface Sending {
	track: MediaStreamTrack;
	encodings?: types.RtpEncodingParameters[];
	paused: boolean;
}

/** How a reconnect attempt ended: in the call, try again, try with a new token, or the session ended. */
type Attempt = "done" | "retry" | "token" | "over";

/** Three layers: ¼, ½ and full resolution. */
export const DEFAULT_SIMULCAST: types.RtpEncodingParameters[] = [
	{ scaleResolutionDownBy: 4, maxBitrate: 150_000 },
	{ scaleResolutionDownBy: 2, maxBitrate: 500_000 },
	{ scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];
const DEFAULT_VIDEO: MediaTrackConstraints = {
	width: { ideal: 1280 },
	height: { ideal: 720 },
	frameRate: { ideal: 30 },
};

type Listener = (event: never) => void;

export class CallSession {
	readonly #options: CallJoinOptions;
	readonly #listeners = new Map<keyof CallEvents, Set<Listener>>();
	readonly #participants = new Map<string, PeerInfo>();
	readonly #producers = new Map<MediaSource, types.Producer>();
	/** What this participant publishes, whatever node it is on: a move publishes the same again. */
	readonly #sending = new Map<MediaSource, Sending>();
	readonly #consumers = new Map<string, { consumer: types.Consumer; remote: RemoteTrack }>();
	#signaling: RtcSignaling;
	#device = new Device();
	#node: NodeJoin;
	/** The node the device was loaded for, and the one the transports live on. */
	#deviceUrl: string;
	#transportsUrl: string;
	#sendTransport: types.Transport | undefined;
	#recvTransport: types.Transport | undefined;
	#recvReady!: Promise<types.Transport | undefined>;
	#setRecv: (transport: types.Transport | undefined) => void = () => {};
	#queue: Promise<void> = Promise.resolve();
	/** Bumped whenever the session enters a node again: work begun before is dropped. */
	#generation = 0;
	#recovery: Promise<void> | undefined;
	/** The api said the call moved (or the node is going): do not wait for the same node. */
	#skipSameNode = false;
	/** The node a running recovery started from. */
	#leaving: string | undefined;
	/** Participants not on the node the session moved to (yet). */
	readonly #absent = new Set<string>();
	#absentTimer: ReturnType<typeof setTimeout> | undefined;
	#peerId = "";
	#ended = false;

	/** Connects, joins, opens the transports and publishes; rejects with a CallError (e.g. CALL_FULL, INVALID_TOKEN). */
	static async join(options: CallJoinOptions): Promise<CallSession> {
		const signaling = await RtcSignaling.open(options.url, options.token, {
			...(options.requestTimeoutMs !== undefined && { timeoutMs: options.requestTimeoutMs }),
		});
		const session = new CallSession(signaling, options);
		try {
			await session.#start();
		} catch (error) {
			session.#end("disconnected", error instanceof CallError ? error : undefined);
			throw error;
		}
		return session;
	}

	private constructor(signaling: RtcSignaling, options: CallJoinOptions) {
		this.#signaling = signaling;
		this.#options = options;
		this.#node = {
			url: options.url,
			token: options.token,
			...(options.iceServers && { iceServers: options.iceServers }),
		};
		this.#deviceUrl = options.url;
		this.#transportsUrl = options.url;
		this.#resetRecv();
		for (const [name, listener] of Object.entries(options.on ?? {})) {
			this.on(name as keyof CallEvents, listener as CallListeners[keyof CallEvents]);
		}
		this.#attach(signaling);
	}

	/** This participant's id (the user id). */
	get peerId(): string {
		return this.#peerId;
	}

	get callId(): string {
		return this.#signaling.ready.callId;
	}

	/** The media node's WebSocket URL the session is on (changes when the call moves). */
	get url(): string {
		return this.#node.url;
	}

	get ended(): boolean {
		return this.#ended;
	}

	/** Getting back into the call (between `reconnecting` and `reconnected`). */
	get reconnecting(): boolean {
		return this.#recovery !== undefined && this.#signaling.closed;
	}

	/** The other participants, as the node describes them. */
	get participants(): ReadonlyMap<string, PeerInfo> {
		return this.#participants;
	}

	/** Tracks received from the others. */
	get remoteTracks(): RemoteTrack[] {
		return [...this.#consumers.values()].map((c) => c.remote);
	}

	/** What this participant sends, by source. */
	localTrack(source: MediaSource): MediaStreamTrack | undefined {
		return this.#sending.get(source)?.track;
	}

	isMuted(source: "mic" | "camera"): boolean {
		return this.#sending.get(source)?.paused ?? true;
	}

	on<K extends keyof CallEvents>(name: K, listener: CallListeners[K]): () => void {
		const set = this.#listeners.get(name) ?? new Set();
		this.#listeners.set(name, set);
		set.add(listener as Listener);
		return () => set.delete(listener as Listener);
	}

	setMicrophoneMuted(muted: boolean): Promise<void> {
		return this.#setMuted("mic", muted);
	}

	setCameraMuted(muted: boolean): Promise<void> {
		return this.#setMuted("camera", muted);
	}

	/** Shares a screen (getDisplayMedia) as a producer with source "screen"; stops when the browser's share ends. */
	async startScreenShare(
		options: DisplayMediaStreamOptions = { video: true, audio: false },
	): Promise<MediaStreamTrack> {
		if (this.#sending.has("screen")) throw new CallError("CONFLICT", "already sharing a screen");
		const stream = await navigator.mediaDevices.getDisplayMedia(options);
		const [track] = stream.getVideoTracks();
		if (!track) throw new CallError("NO_MEDIA", "no screen track");
		await this.#produce(track, "screen");
		return track;
	}

	async stopScreenShare(): Promise<void> {
		const sending = this.#sending.get("screen");
		if (!sending) return;
		this.#sending.delete("screen");
		sending.track.stop();
		const producer = this.#producers.get("screen");
		if (!producer) return;
		this.#producers.delete("screen");
		producer.close();
		if (!this.#signaling.closed) await this.#signaling.request("closeProducer", { producerId: producer.id });
	}

	/**
	 * Asks the api (`rejoin`) where the call runs and moves there when that is
	 * another node. Call it when the user channel says
	 * `{type:"call", event:"moved"}` for this call; harmless otherwise.
	 */
	reconnect(): Promise<void> {
		if (this.#ended || !this.#options.rejoin) return Promise.resolve();
		return this.#recover("moved");
	}

	/** Inbound media per consumer (packets, decoded frames) and the ICE path of each transport. */
	async getStats(): Promise<CallStats> {
		const inbound: InboundStats[] = await Promise.all(
			[...this.#consumers.values()].map(async ({ consumer, remote }) => ({
				consumerId: remote.consumerId,
				peerId: remote.peerId,
				source: remote.source,
				kind: remote.kind,
				...inboundOf(await consumer.getStats()),
			})),
		);
		const transport = async (t: types.Transport | undefined): Promise<TransportStats | undefined> =>
			t && !t.closed ? { state: t.connectionState, ...selectedPath(await t.getStats()) } : undefined;
		const [send, recv] = await Promise.all([transport(this.#sendTransport), transport(this.#recvTransport)]);
		return { ...summarize(inbound), ...(send && { send }), ...(recv && { recv }) };
	}

	/** Leaves the call (others see participantLeft) and releases the camera, microphone and sockets. */
	async leave(): Promise<void> {
		if (this.#ended) return;
		await this.#signaling.request("leave", {}).catch(() => {});
		this.#end("left");
	}

	// --- internals -----------------------------------------------------------

	#emit<K extends keyof CallEvents>(name: K, event: CallEvents[K]): void {
		for (const listener of this.#listeners.get(name) ?? []) {
			try {
				(listener as CallListeners[K])(event);
			} catch (error) {
				console.error(`CallSession ${name} listener failed`, error);
			}
		}
	}

	/** Only the current socket speaks for the session. */
	#attach(signaling: RtcSignaling): void {
		signaling.onNotification = (n) => {
			if (signaling === this.#signaling) this.#onNotification(n);
		};
		signaling.onClose = (error) => {
			if (signaling === this.#signaling) this.#onSocketClosed(error);
		};
	}

	/** Consumers queued meanwhile wait for the next receive transport (those queued before are released). */
	#resetRecv(): void {
		this.#setRecv(undefined);
		this.#recvReady = new Promise((resolve) => {
			this.#setRecv = resolve;
		});
	}

	async #start(): Promise<void> {
		const { rtpCapabilities } = await this.#signaling.request("getRouterRtpCapabilities", {});
		await this.#device.load({ routerRtpCapabilities: rtpCapabilities as types.RtpCapabilities });
		const joined = await this.#signaling.request("join", {
			rtpCapabilities: this.#device.rtpCapabilities,
			...(this.#options.displayName && { displayName: this.#options.displayName }),
		});
		this.#peerId = joined.peerId;
		for (const peer of joined.peers) this.#addParticipant(peer);

		const permissions = new Set(this.#signaling.ready.permissions);
		if (permissions.has("subscribe")) {
			this.#recvTransport = await this.#createTransport("recv");
		}
		this.#setRecv(this.#recvTransport);

		const publish = this.#options.publish ?? { audio: true, video: true };
		const audio = publish.audio && this.#device.canProduce("audio") ? publish.audio : false;
		const video = publish.video && this.#device.canProduce("video") ? publish.video : false;
		if (!permissions.has("publish") || (!audio && !video)) return;
		const stream = await navigator.mediaDevices.getUserMedia({
			audio,
			video: video === true ? DEFAULT_VIDEO : video,
		});
		const [mic] = stream.getAudioTracks();
		const [camera] = stream.getVideoTracks();
		if (mic) await this.#produce(mic, "mic");
		if (camera) await this.#produce(camera, "camera", this.#options.simulcast ?? DEFAULT_SIMULCAST);
	}

	async #createTransport(direction: "send" | "recv"): Promise<types.Transport> {
		const info = await this.#signaling.request("createWebRtcTransport", { direction });
		const options: types.TransportOptions = {
			id: info.id,
			iceParameters: info.iceParameters,
			iceCandidates: info.iceCandidates.map((c) => ({ ...c, ip: c.ip ?? c.address })),
			dtlsParameters: info.dtlsParameters,
			iceServers: (this.#node.iceServers ?? []).map((s) => ({ ...s })),
			...(this.#options.iceTransportPolicy && { iceTransportPolicy: this.#options.iceTransportPolicy }),
		};
		const transport =
			direction === "send" ? this.#device.createSendTransport(options) : this.#device.createRecvTransport(options);
		const relay = (options.iceServers ?? []).some((server) =>
			(Array.isArray(server.urls) ? server.urls : [server.urls]).some((url) => /^turns?:/i.test(url)),
		);
		transport.on("connect", ({ dtlsParameters }, callback, errback) => {
			this.#signaling
				.request("connectWebRtcTransport", { transportId: transport.id, dtlsParameters })
				.then(() => callback(), errback);
		});
		transport.on("connectionstatechange", (state) => {
			// Failures users hit are counted on the node (secureconnect_client_ice_failures_total{relay}).
			if (state === "failed" && !this.#signaling.closed) {
				this.#signaling.request("reportIceFailure", { transportId: transport.id, relay }).catch(() => {});
			}
			this.#emit("connectionStateChanged", { direction, state });
		});
		transport.on("icecandidateerror", (e) =>
			this.#emit("iceError", { direction, url: e.url, errorCode: e.errorCode, errorText: e.errorText }),
		);
		if (direction === "send") {
			transport.on("produce", ({ kind, rtpParameters, appData }, callback, errback) => {
				this.#signaling
					.request("produce", {
						transportId: transport.id,
						kind,
						rtpParameters,
						appData: { source: appData.source as MediaSource },
					})
					.then(callback, errback);
			});
		}
		return transport;
	}

	/** Tracks outlive their producers (`stopTracks: false`), so a move can publish them again. */
	async #produce(
		track: MediaStreamTrack,
		source: MediaSource,
		encodings?: types.RtpEncodingParameters[],
	): Promise<types.Producer> {
		this.#sendTransport ??= await this.#createTransport("send");
		const producer = await this.#sendTransport.produce({
			track,
			stopTracks: false,
			...(encodings && { encodings: encodings.map((e) => ({ ...e })) }),
			...(source === "camera" && { codecOptions: { videoGoogleStartBitrate: 1000 } }),
			appData: { source },
		});
		this.#producers.set(source, producer);
		const paused = this.#sending.get(source)?.paused ?? false;
		this.#sending.set(source, { track, paused, ...(encodings && { encodings }) });
		if (source === "screen") producer.on("trackended", () => void this.stopScreenShare());
		return producer;
	}

	async #setMuted(source: "mic" | "camera", muted: boolean): Promise<void> {
		const sending = this.#sending.get(source);
		if (!sending) throw new CallError("NOT_FOUND", `no ${source} is being sent`);
		if (sending.paused === muted) return;
		sending.paused = muted;
		// While reconnecting there may be no producer: the new one starts muted or not, as recorded.
		const producer = this.#producers.get(source);
		if (producer && !producer.closed) {
			if (muted) producer.pause();
			else producer.resume();
			if (!this.#signaling.closed) {
				await this.#signaling.request(muted ? "pauseProducer" : "resumeProducer", { producerId: producer.id });
			}
		}
		this.#emit("muteChanged", { peerId: this.#peerId, source, muted });
	}

	#addParticipant(peer: PeerInfo): void {
		this.#absent.delete(peer.id);
		this.#participants.set(peer.id, peer);
		this.#emit("participantJoined", { participant: peer });
	}

	#onNotification(n: RtcNotification): void {
		switch (n.method) {
			case "peerJoined":
				this.#addParticipant(n.data.peer);
				break;
			case "peerLeft":
				for (const { remote } of [...this.#consumers.values()]) {
					if (remote.peerId === n.data.peerId) this.#closeConsumer(remote.consumerId);
				}
				this.#absent.delete(n.data.peerId);
				if (this.#participants.delete(n.data.peerId)) this.#emit("participantLeft", { peerId: n.data.peerId });
				break;
			case "newConsumer": {
				const data = n.data;
				const generation = this.#generation;
				this.#queue = this.#queue.then(() => this.#consume(data, generation)).catch((error) => console.error(error));
				break;
			}
			case "consumerClosed":
				this.#queue = this.#queue.then(() => this.#closeConsumer(n.data.consumerId));
				break;
			case "producerPaused":
			case "producerResumed": {
				const muted = n.method === "producerPaused";
				const producer = this.#participants.get(n.data.peerId)?.producers.find((p) => p.id === n.data.producerId);
				if (producer) producer.paused = muted;
				for (const { remote } of this.#consumers.values()) {
					if (remote.producerId === n.data.producerId) remote.paused = muted;
				}
				this.#emit("muteChanged", { peerId: n.data.peerId, source: n.data.source, muted });
				break;
			}
			case "activeSpeaker":
				this.#emit("activeSpeaker", { peerId: n.data.peerId });
				break;
			case "nodeDraining":
				this.#emit("draining", { deadline: n.data.deadline });
				if (this.#options.rejoin) void this.#recover("draining");
				break;
			case "callEnded":
				// The call itself ended; a node shutting down or losing a worker only ends it there.
				if (n.data.reason !== "ended" && this.#options.rejoin) void this.#recover(n.data.reason);
				else this.#end(n.data.reason);
				break;
			default:
				// consumerPaused/Resumed mirror producerPaused/Resumed; layer changes need no action here.
				break;
		}
	}

	async #consume(data: RtcNotificationData<"newConsumer">, generation: number): Promise<void> {
		const transport = await this.#recvReady;
		if (!transport || transport.closed || generation !== this.#generation) return;
		const consumer = await transport.consume({
			id: data.id,
			producerId: data.producerId,
			kind: data.kind,
			rtpParameters: data.rtpParameters as types.RtpParameters,
			appData: { peerId: data.peerId, source: data.appData.source },
		});
		if (generation !== this.#generation) {
			consumer.close();
			return;
		}
		const remote: RemoteTrack = {
			consumerId: consumer.id,
			producerId: data.producerId,
			peerId: data.peerId,
			kind: data.kind,
			source: data.appData.source,
			track: consumer.track,
			paused: data.producerPaused,
		};
		this.#consumers.set(consumer.id, { consumer, remote });
		const peer = this.#participants.get(data.peerId);
		if (peer && !peer.producers.some((p) => p.id === data.producerId)) {
			peer.producers.push({ id: data.producerId, kind: data.kind, source: data.appData.source, paused: remote.paused });
		}
		await this.#signaling.request("resumeConsumer", { consumerId: consumer.id });
		this.#emit("trackAdded", remote);
	}

	#closeConsumer(consumerId: string): void {
		const entry = this.#consumers.get(consumerId);
		if (!entry) return;
		this.#consumers.delete(consumerId);
		entry.consumer.close();
		const peer = this.#participants.get(entry.remote.peerId);
		if (peer) peer.producers = peer.producers.filter((p) => p.id !== entry.remote.producerId);
		this.#emit("trackRemoved", entry.remote);
	}

	// --- reconnects ----------------------------------------------------------

	#onSocketClosed(error: CallError): void {
		if (this.#ended || this.#recovery) return;
		if (error.closeCode === RTC_CLOSE_CODES.CALL_ENDED) this.#end("ended", error);
		else if (error.closeCode !== undefined && FINAL_CLOSE_CODES.has(error.closeCode)) this.#end("disconnected", error);
		else void this.#recover("disconnected", error);
	}

	/** One recovery at a time; a later reason only hurries it past the same node. */
	#recover(reason: ReconnectReason, error?: CallError): Promise<void> {
		if (this.#ended) return Promise.resolve();
		if (reason !== "disconnected") this.#skipSameNode = true;
		this.#leaving ??= this.#transportsUrl;
		this.#recovery ??= this.#recoverOnce(reason, error)
			.catch((failure: unknown) => {
				this.#end("disconnected", failure instanceof CallError ? failure : error);
			})
			.finally(() => {
				this.#recovery = undefined;
				this.#skipSameNode = false;
				this.#leaving = undefined;
			});
		return this.#recovery;
	}

	async #recoverOnce(reason: ReconnectReason, error?: CallError): Promise<void> {
		const sameNodeMs = this.#options.reconnect?.sameNodeMs ?? DEFAULT_SAME_NODE_MS;
		const giveUpAt = Date.now() + (this.#options.reconnect?.giveUpMs ?? DEFAULT_GIVE_UP_MS);
		let told = false;
		const tell = () => {
			if (told) return;
			told = true;
			this.#emit("reconnecting", { reason, ...(error && { error }) });
		};
		// The node closed the call there (shutdown, lost worker): its socket is as good as gone.
		const nodeGone = () => this.#signaling.closed || reason === "node-shutdown" || reason === "media-failure";
		if (nodeGone()) tell();

		// 1. The same node, while it may still hold our place (a blip).
		if (reason === "disconnected") {
			const until = Date.now() + sameNodeMs;
			let pause = 250;
			while (!this.#ended && !this.#skipSameNode && Date.now() < until) {
				const attempt = await this.#tryNode(this.#node, Math.max(1_000, until - Date.now()));
				if (attempt === "done" || attempt === "over") return;
				if (attempt === "token") break;
				await sleep(pause);
				pause = Math.min(pause * 2, 1_000);
			}
		}
		const rejoin = this.#options.rejoin;
		if (this.#ended) return;
		if (!rejoin) {
			this.#end("disconnected", error);
			return;
		}

		// 2. Wherever the api says the call runs (it moves calls off dead nodes).
		let pause = 500;
		while (!this.#ended && Date.now() < giveUpAt) {
			const node = await rejoin().then(
				(join) => join ?? "over",
				() => undefined,
			);
			if (this.#ended) return;
			if (node === "over") {
				this.#end("ended", error);
				return;
			}
			if (node) {
				const here = node.url === this.#node.url && !nodeGone();
				if (here && reason !== "draining") return;
				if (!here) {
					tell();
					const attempt = await this.#tryNode(node, 10_000);
					if (attempt === "done" || attempt === "over") return;
				}
			}
			await sleep(pause);
			pause = Math.min(pause * 2, 4_000);
		}
		if (!this.#ended) {
			this.#end("disconnected", error ?? new CallError("TIMEOUT", "could not get back into the call in time"));
		}
	}

	/** Opens `node`'s socket and enters the call there. */
	async #tryNode(node: NodeJoin, openTimeoutMs: number): Promise<Attempt> {
		let signaling: RtcSignaling;
		try {
			signaling = await RtcSignaling.open(node.url, node.token, {
				openTimeoutMs,
				...(this.#options.requestTimeoutMs !== undefined && { timeoutMs: this.#options.requestTimeoutMs }),
			});
		} catch (error) {
			const code = error instanceof CallError ? error.code : undefined;
			if (code && TOKEN_REFUSALS.has(code)) return "token";
			if (code === "CALL_FULL" || code === "FORBIDDEN") {
				this.#end("disconnected", error as CallError);
				return "over";
			}
			return "retry";
		}
		if (this.#ended) {
			signaling.close();
			return "over";
		}
		try {
			await this.#enter(signaling, node);
			return "done";
		} catch (error) {
			if (signaling === this.#signaling && !signaling.closed) {
				// Half in: leave this socket so the next attempt starts clean.
				signaling.onClose = () => {};
				signaling.close();
			}
			console.warn("CallSession: reconnect attempt failed", error);
			return this.#ended ? "over" : "retry";
		}
	}

	/**
	 * Takes `signaling` as the session's socket and gets back into the call:
	 * on the same node that kept our transports and producers, only consumers
	 * are new; anywhere else, new transports publish the same tracks again.
	 */
	async #enter(signaling: RtcSignaling, node: NodeJoin): Promise<void> {
		const previous = this.#signaling;
		const moved = node.url !== this.#transportsUrl;
		const generation = ++this.#generation;
		this.#signaling = signaling;
		this.#attach(signaling);
		if (previous !== signaling) {
			previous.onClose = () => {};
			previous.onNotification = () => {};
			// Leaving a node that still runs (draining, or the call moved): free our place there at once.
			if (!previous.closed && node.url !== this.#node.url) previous.request("leave", {}).catch(() => {});
			previous.close();
		}
		this.#node = { ...node, ...(!node.iceServers && this.#node.iceServers && { iceServers: this.#node.iceServers }) };
		// Whatever was received came over the old socket's consumers: gone on either path.
		for (const consumerId of [...this.#consumers.keys()]) this.#closeConsumer(consumerId);
		this.#resetRecv();

		const { rtpCapabilities } = await signaling.request("getRouterRtpCapabilities", {});
		if (this.#deviceUrl !== node.url) {
			const device = new Device();
			await device.load({ routerRtpCapabilities: rtpCapabilities as types.RtpCapabilities });
			this.#device = device;
			this.#deviceUrl = node.url;
		}
		const joined = await signaling.request("join", {
			rtpCapabilities: this.#device.rtpCapabilities,
			...(this.#options.displayName && { displayName: this.#options.displayName }),
		});
		this.#syncParticipants(joined.peers, moved);

		const keptTransports = new Set(joined.transports.map((t) => t.id));
		const keptProducers = new Set(joined.producers.map((p) => p.id));
		const resumed =
			!moved &&
			joined.resumed &&
			[this.#sendTransport, this.#recvTransport].every((t) => !t || keptTransports.has(t.id)) &&
			[...this.#producers.values()].every((p) => keptProducers.has(p.id));
		if (resumed) {
			this.#setRecv(this.#recvTransport);
			// Mute changes made while the socket was down.
			for (const [source, producer] of this.#producers) {
				const paused = this.#sending.get(source)?.paused ?? producer.paused;
				if (joined.producers.find((p) => p.id === producer.id)?.paused === paused) continue;
				if (paused) producer.pause();
				else producer.resume();
				await signaling.request(paused ? "pauseProducer" : "resumeProducer", { producerId: producer.id });
			}
		} else {
			if (!moved) {
				for (const transportId of keptTransports) {
					await signaling.request("closeTransport", { transportId }).catch(() => {});
				}
			}
			await this.#publishAgain(signaling, generation);
		}
		if (generation !== this.#generation || this.#ended) return;
		this.#emit("reconnected", { url: node.url, moved: node.url !== (this.#leaving ?? this.#transportsUrl), resumed });
	}

	/** New transports on the session's current node; the tracks that were sent are sent again, muted as they were. */
	async #publishAgain(signaling: RtcSignaling, generation: number): Promise<void> {
		this.#producers.clear();
		const [oldSend, oldRecv] = [this.#sendTransport, this.#recvTransport];
		this.#sendTransport = undefined;
		this.#recvTransport = undefined;
		oldSend?.close();
		oldRecv?.close();
		this.#transportsUrl = this.#node.url;

		const permissions = new Set(signaling.ready.permissions);
		if (permissions.has("subscribe")) this.#recvTransport = await this.#createTransport("recv");
		if (generation !== this.#generation) return;
		this.#setRecv(this.#recvTransport);
		for (const [source, { track, paused, encodings }] of [...this.#sending]) {
			if (generation !== this.#generation) return;
			if (track.readyState !== "live") {
				this.#sending.delete(source);
				continue;
			}
			const producer = await this.#produce(track, source, encodings);
			if (paused) {
				producer.pause();
				await signaling.request("pauseProducer", { producerId: producer.id });
			}
		}
	}

	/** The participants as the node now lists them. */
	/**
	 * The participants as the node now lists them. After a move, the ones not
	 * there yet are probably on their way: they stay (`connected: false`) for
	 * ABSENT_AFTER_MOVE_MS before counting as gone.
	 */
	#syncParticipants(peers: PeerInfo[], moved: boolean): void {
		const present = new Set(peers.map((p) => p.id));
		for (const [peerId, peer] of [...this.#participants]) {
			if (present.has(peerId)) continue;
			if (moved) {
				this.#participants.set(peerId, { ...peer, connected: false, producers: [] });
				this.#absent.add(peerId);
				continue;
			}
			this.#absent.delete(peerId);
			this.#participants.delete(peerId);
			this.#emit("participantLeft", { peerId });
		}
		for (const peer of peers) {
			if (this.#participants.has(peer.id) && !this.#absent.has(peer.id)) this.#participants.set(peer.id, peer);
			else this.#addParticipant(peer);
		}
		if (this.#absent.size === 0) return;
		clearTimeout(this.#absentTimer);
		this.#absentTimer = setTimeout(() => {
			for (const peerId of this.#absent) {
				if (this.#participants.delete(peerId)) this.#emit("participantLeft", { peerId });
			}
			this.#absent.clear();
		}, ABSENT_AFTER_MOVE_MS);
	}

	#end(reason: CallEvents["ended"]["reason"], error?: CallError): void {
		if (this.#ended) return;
		this.#ended = true;
		clearTimeout(this.#absentTimer);
		this.#setRecv(undefined);
		for (const consumerId of [...this.#consumers.keys()]) this.#closeConsumer(consumerId);
		for (const producer of this.#producers.values()) producer.close();
		for (const { track } of this.#sending.values()) track.stop();
		this.#producers.clear();
		this.#sending.clear();
		this.#sendTransport?.close();
		this.#recvTransport?.close();
		this.#signaling.close();
		this.#emit("ended", { reason, ...(error && { error }) });
	}
}
