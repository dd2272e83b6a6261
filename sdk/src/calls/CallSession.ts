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
// A dropped socket ends the session ("disconnected"); the node keeps the
// participant's place for its reconnect grace, so joining again through the
// api resumes it.
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
	/** The node is shutting down: join again through the api before `deadline`. */
	draining: { deadline: string };
	/** The session is over; `error` says why when it was not `leave()`. */
	ended: { reason: CallEndReason | "left" | "disconnected"; error?: CallError };
}

export type CallListeners = { [K in keyof CallEvents]: (event: CallEvents[K]) => void };

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
}

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
	readonly #signaling: RtcSignaling;
	readonly #options: CallJoinOptions;
	readonly #device = new Device();
	readonly #listeners = new Map<keyof CallEvents, Set<Listener>>();
	readonly #participants = new Map<string, PeerInfo>();
	readonly #producers = new Map<MediaSource, types.Producer>();
	readonly #consumers = new Map<string, { consumer: types.Consumer; remote: RemoteTrack }>();
	#sendTransport: types.Transport | undefined;
	#recvTransport: types.Transport | undefined;
	#recvReady: Promise<types.Transport | undefined>;
	#setRecv: (transport: types.Transport | undefined) => void = () => {};
	#queue: Promise<void> = Promise.resolve();
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
		this.#recvReady = new Promise((resolve) => {
			this.#setRecv = resolve;
		});
		for (const [name, listener] of Object.entries(options.on ?? {})) {
			this.on(name as keyof CallEvents, listener as CallListeners[keyof CallEvents]);
		}
		signaling.onNotification = (n) => this.#onNotification(n);
		signaling.onClose = (error) =>
			this.#end(error.closeCode === RTC_CLOSE_CODES.CALL_ENDED ? "ended" : "disconnected", error);
	}

	/** This participant's id (the user id). */
	get peerId(): string {
		return this.#peerId;
	}

	get callId(): string {
		return this.#signaling.ready.callId;
	}

	get ended(): boolean {
		return this.#ended;
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
		return this.#producers.get(source)?.track ?? undefined;
	}

	isMuted(source: "mic" | "camera"): boolean {
		return this.#producers.get(source)?.paused ?? true;
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
		if (this.#producers.has("screen")) throw new CallError("CONFLICT", "already sharing a screen");
		const stream = await navigator.mediaDevices.getDisplayMedia(options);
		const [track] = stream.getVideoTracks();
		if (!track) throw new CallError("NO_MEDIA", "no screen track");
		const producer = await this.#produce(track, "screen");
		producer.on("trackended", () => void this.stopScreenShare());
		return track;
	}

	async stopScreenShare(): Promise<void> {
		const producer = this.#producers.get("screen");
		if (!producer) return;
		this.#producers.delete("screen");
		producer.close();
		producer.track?.stop();
		if (!this.#signaling.closed) await this.#signaling.request("closeProducer", { producerId: producer.id });
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
			iceServers: (this.#options.iceServers ?? []).map((s) => ({ ...s })),
			...(this.#options.iceTransportPolicy && { iceTransportPolicy: this.#options.iceTransportPolicy }),
		};
		const transport =
			direction === "send" ? this.#device.createSendTransport(options) : this.#device.createRecvTransport(options);
		transport.on("connect", ({ dtlsParameters }, callback, errback) => {
			this.#signaling
				.request("connectWebRtcTransport", { transportId: transport.id, dtlsParameters })
				.then(() => callback(), errback);
		});
		transport.on("connectionstatechange", (state) => this.#emit("connectionStateChanged", { direction, state }));
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

	async #produce(
		track: MediaStreamTrack,
		source: MediaSource,
		encodings?: types.RtpEncodingParameters[],
	): Promise<types.Producer> {
		this.#sendTransport ??= await this.#createTransport("send");
		const producer = await this.#sendTransport.produce({
			track,
			...(encodings && { encodings: encodings.map((e) => ({ ...e })) }),
			...(source === "camera" && { codecOptions: { videoGoogleStartBitrate: 1000 } }),
			appData: { source },
		});
		this.#producers.set(source, producer);
		return producer;
	}

	async #setMuted(source: "mic" | "camera", muted: boolean): Promise<void> {
		const producer = this.#producers.get(source);
		if (!producer) throw new CallError("NOT_FOUND", `no ${source} is being sent`);
		if (producer.paused === muted) return;
		if (muted) producer.pause();
		else producer.resume();
		await this.#signaling.request(muted ? "pauseProducer" : "resumeProducer", { producerId: producer.id });
		this.#emit("muteChanged", { peerId: this.#peerId, source, muted });
	}

	#addParticipant(peer: PeerInfo): void {
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
				if (this.#participants.delete(n.data.peerId)) this.#emit("participantLeft", { peerId: n.data.peerId });
				break;
			case "newConsumer": {
				const data = n.data;
				this.#queue = this.#queue.then(() => this.#consume(data)).catch((error) => console.error(error));
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
				break;
			case "callEnded":
				this.#end(n.data.reason);
				break;
			default:
				// consumerPaused/Resumed mirror producerPaused/Resumed; layer changes need no action here.
				break;
		}
	}

	async #consume(data: RtcNotificationData<"newConsumer">): Promise<void> {
		const transport = await this.#recvReady;
		if (!transport || transport.closed) return;
		const consumer = await transport.consume({
			id: data.id,
			producerId: data.producerId,
			kind: data.kind,
			rtpParameters: data.rtpParameters as types.RtpParameters,
			appData: { peerId: data.peerId, source: data.appData.source },
		});
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

	#end(reason: CallEvents["ended"]["reason"], error?: CallError): void {
		if (this.#ended) return;
		this.#ended = true;
		this.#setRecv(undefined);
		for (const consumerId of [...this.#consumers.keys()]) this.#closeConsumer(consumerId);
		for (const producer of this.#producers.values()) {
			producer.close();
			producer.track?.stop();
		}
		this.#producers.clear();
		this.#sendTransport?.close();
		this.#recvTransport?.close();
		this.#signaling.close();
		this.#emit("ended", { reason, ...(error && { error }) });
	}
}
