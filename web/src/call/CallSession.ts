// One call in the browser: the api's call lifecycle (POST /v1/calls, join,
// decline, leave) and the media node's signaling driven with mediasoup-client
// (one send and one receive WebRTC transport; microphone, camera and screen
// producers; a consumer per remote track).
import type { Call, JoinInfo as JoinInfoSchema } from "@secureconnect/protocol";
import { Device, type types } from "mediasoup-client";
import type { z } from "zod";
import type {
	MediaSource,
	RtcNotificationData,
	RtcNotificationMethod,
	RtcRequestData,
} from "../../../protocol/src/signaling.ts";
import type { Session } from "../session.ts";
import { RtcSignaling } from "./signaling.ts";

export interface RemotePeer {
	id: string;
	name: string;
	/** Microphone and camera tracks. */
	stream: MediaStream;
	/** Screen share, while there is one. */
	screen: MediaStream | undefined;
	micOff: boolean;
	cameraOff: boolean;
	hasVideo: boolean;
	consumers: Map<string, { consumer: types.Consumer; source: MediaSource }>;
}

export type CallStatus = "connecting" | "ringing" | "live" | "ended";

export interface InboundVideoStats {
	framesDecoded: number;
	packetsReceived: number;
	bytesReceived: number;
}

type JoinInfo = z.infer<typeof JoinInfoSchema>;
type CallRef = { id: string; conversationId: string; media: "audio" | "video" };

const CAMERA: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

export class CallSession {
	readonly session: Session;
	readonly callId: string;
	readonly conversationId: string;
	readonly media: "audio" | "video";
	status: CallStatus = "connecting";
	/** The latest thing worth telling (someone declined, left…). */
	note = "";
	readonly peers = new Map<string, RemotePeer>();
	activeSpeaker: string | null = null;
	local: MediaStream = new MediaStream();
	screen: MediaStream | undefined;
	micOn = false;
	cameraOn = false;
	onChange: () => void = () => {};
	#signaling: RtcSignaling | undefined;
	#device: Device | undefined;
	#send: types.Transport | undefined;
	#recv: types.Transport | undefined;
	#producers = new Map<MediaSource, types.Producer>();
	#consuming: Promise<void> = Promise.resolve();
	#everJoined = new Set<string>();
	#stopCallEvents: () => void;
	#ended = false;
	#leaving = false;

	private constructor(session: Session, call: CallRef) {
		this.session = session;
		this.callId = call.id;
		this.conversationId = call.conversationId;
		this.media = call.media;
		this.#stopCallEvents = session.onCallEvent((frame) => {
			if (frame.callId !== this.callId || frame.userId === session.me.id) return;
			const who = session.name(frame.userId);
			if (frame.event === "declined") this.#tell(`${who} declined the call.`);
			if (frame.event === "busy") this.#tell(`${who} is in another call.`);
			if (frame.event === "missed") void this.end(`${who} didn't answer.`);
			if (frame.event === "ended") void this.end(this.note || "The call ended.");
		});
	}

	/** Rings the other members of the conversation and joins the call. */
	static async start(session: Session, conversationId: string, media: "audio" | "video"): Promise<CallSession> {
		const res = await session.request<{ call: Call; join: JoinInfo }>("POST", "/v1/calls", { conversationId, media });
		const call = new CallSession(session, res.call);
		call.status = "ringing";
		void call.#connect(res.join);
		return call;
	}

	/** Answers a ringing call (or rejoins a running one). */
	static async answer(
		session: Session,
		incoming: { callId: string; conversationId: string; media: "audio" | "video" },
	): Promise<CallSession> {
		const { join } = await session.request<{ join: JoinInfo }>("POST", `/v1/calls/${incoming.callId}/join`);
		const call = new CallSession(session, { id: incoming.callId, ...incoming });
		void call.#connect(join);
		return call;
	}

	static async decline(session: Session, callId: string): Promise<void> {
		await session.request("POST", `/v1/calls/${callId}/decline`);
	}

	get ended(): boolean {
		return this.#ended;
	}

	#tell(note: string): void {
		this.note = note;
		this.onChange();
	}

	async #localMedia(): Promise<void> {
		const attempts: MediaStreamConstraints[] =
			this.media === "video" ? [{ audio: true, video: CAMERA }, { audio: true }, { video: CAMERA }] : [{ audio: true }];
		for (const constraints of attempts) {
			try {
				this.local = await navigator.mediaDevices.getUserMedia(constraints);
				return;
			} catch {
				// Try with less (no camera, or no microphone).
			}
		}
		this.#tell("No camera or microphone could be opened: you can see and hear the others, they can't see or hear you.");
	}

	async #connect(join: JoinInfo): Promise<void> {
		try {
			await this.#localMedia();
			if (this.#ended) return;
			const { signaling, ready } = await RtcSignaling.open(join.url, join.token);
			this.#signaling = signaling;
			signaling.onNotification = (method, data) => this.#onNotification(method, data);
			signaling.onClose = (_code, error) => {
				if (!this.#ended && !this.#leaving)
					void this.end(error ? `Call connection lost: ${error.message}` : "Call connection lost.");
			};
			const { rtpCapabilities } = await signaling.request("getRouterRtpCapabilities", {});
			const device = new Device();
			await device.load({ routerRtpCapabilities: rtpCapabilities as types.RtpCapabilities });
			this.#device = device;
			const joined = await signaling.request("join", {
				rtpCapabilities: device.rtpCapabilities as Record<string, unknown>,
				displayName: this.session.me.displayName,
			});
			for (const peer of joined.peers) this.#addPeer(peer.id, peer.displayName);
			if (joined.peers.length > 0) this.status = "live";
			const iceServers = join.iceServers as RTCIceServer[];
			if (ready.permissions.includes("subscribe")) this.#recv = await this.#transport("recv", iceServers);
			if (ready.permissions.includes("publish")) {
				this.#send = await this.#transport("send", iceServers);
				const mic = this.local.getAudioTracks()[0];
				const camera = this.local.getVideoTracks()[0];
				if (mic) await this.#produce(mic, "mic");
				if (camera) await this.#produce(camera, "camera");
				this.micOn = Boolean(mic);
				this.cameraOn = Boolean(camera);
			}
			this.onChange();
		} catch (error) {
			await this.end(`Could not join the call: ${error instanceof Error ? error.message : String(error)}`);
		}
	}

	async #transport(direction: "send" | "recv", iceServers: RTCIceServer[]): Promise<types.Transport> {
		const signaling = this.#required(this.#signaling);
		const device = this.#required(this.#device);
		const info = await signaling.request("createWebRtcTransport", { direction });
		const options = { ...(info as unknown as types.TransportOptions), iceServers };
		const transport = direction === "send" ? device.createSendTransport(options) : device.createRecvTransport(options);
		transport.on("connect", ({ dtlsParameters }, callback, errback) => {
			signaling
				.request("connectWebRtcTransport", { transportId: transport.id, dtlsParameters })
				.then(() => callback(), errback);
		});
		if (direction === "send") {
			transport.on("produce", ({ kind, rtpParameters, appData }, callback, errback) => {
				signaling
					.request("produce", {
						transportId: transport.id,
						kind,
						rtpParameters: rtpParameters as unknown as RtcRequestData<"produce">["rtpParameters"],
						appData: { source: appData.source as MediaSource },
					})
					.then(({ id }) => callback({ id }), errback);
			});
		}
		transport.on("connectionstatechange", (state) => {
			if (state === "failed") this.#tell("The media connection failed. Check your network.");
		});
		return transport;
	}

	async #produce(track: MediaStreamTrack, source: MediaSource): Promise<types.Producer> {
		const transport = this.#required(this.#send);
		const producer = await transport.produce({ track, appData: { source }, stopTracks: false });
		this.#producers.set(source, producer);
		return producer;
	}

	#addPeer(id: string, displayName: string): RemotePeer {
		let peer = this.peers.get(id);
		if (!peer) {
			peer = {
				id,
				name: displayName || this.session.name(id),
				stream: new MediaStream(),
				screen: undefined,
				micOff: false,
				cameraOff: false,
				hasVideo: false,
				consumers: new Map(),
			};
			this.peers.set(id, peer);
			this.#everJoined.add(id);
		}
		return peer;
	}

	#onNotification<M extends RtcNotificationMethod>(method: M, raw: RtcNotificationData<M>): void {
		switch (method) {
			case "peerJoined": {
				const { peer } = raw as RtcNotificationData<"peerJoined">;
				this.#addPeer(peer.id, peer.displayName);
				this.status = "live";
				this.note = "";
				break;
			}
			case "peerLeft": {
				const { peerId } = raw as RtcNotificationData<"peerLeft">;
				const peer = this.peers.get(peerId);
				this.peers.delete(peerId);
				if (peer) this.note = `${peer.name} left the call.`;
				// A two-person call is over when the other person leaves.
				if (this.peers.size === 0 && this.#everJoined.size > 0) void this.hangUp(this.note);
				break;
			}
			case "newConsumer": {
				const data = raw as RtcNotificationData<"newConsumer">;
				this.#consuming = this.#consuming.then(() => this.#consume(data)).catch(() => {});
				return;
			}
			case "consumerClosed": {
				const { consumerId } = raw as RtcNotificationData<"consumerClosed">;
				for (const peer of this.peers.values()) {
					const entry = peer.consumers.get(consumerId);
					if (!entry) continue;
					entry.consumer.close();
					peer.consumers.delete(consumerId);
					if (entry.source === "screen") peer.screen = undefined;
					else peer.stream.removeTrack(entry.consumer.track);
					peer.hasVideo = peer.stream.getVideoTracks().length > 0;
				}
				break;
			}
			case "producerPaused":
			case "producerResumed": {
				const { peerId, source } = raw as RtcNotificationData<"producerPaused">;
				const peer = this.peers.get(peerId);
				const off = method === "producerPaused";
				if (peer && source === "mic") peer.micOff = off;
				if (peer && source === "camera") peer.cameraOff = off;
				break;
			}
			case "activeSpeaker":
				this.activeSpeaker = (raw as RtcNotificationData<"activeSpeaker">).peerId;
				break;
			case "callEnded":
				void this.end("The call ended.");
				return;
			case "nodeDraining":
				this.note = "The media server is restarting; the call may drop.";
				break;
			default:
				return;
		}
		this.onChange();
	}

	async #consume(data: RtcNotificationData<"newConsumer">): Promise<void> {
		const transport = this.#recv;
		if (!transport || transport.closed) return;
		const consumer = await transport.consume({
			id: data.id,
			producerId: data.producerId,
			kind: data.kind,
			rtpParameters: data.rtpParameters as unknown as types.RtpParameters,
			appData: { peerId: data.peerId, source: data.appData.source },
		});
		const peer = this.#addPeer(data.peerId, "");
		peer.consumers.set(consumer.id, { consumer, source: data.appData.source });
		if (data.appData.source === "screen") peer.screen = new MediaStream([consumer.track]);
		else peer.stream.addTrack(consumer.track);
		if (data.appData.source === "mic") peer.micOff = data.producerPaused;
		if (data.appData.source === "camera") peer.cameraOff = data.producerPaused;
		peer.hasVideo = peer.stream.getVideoTracks().length > 0;
		await this.#required(this.#signaling).request("resumeConsumer", { consumerId: consumer.id });
		this.status = "live";
		this.onChange();
	}

	// ------------------------------------------------------------ controls

	async #setPaused(source: MediaSource, paused: boolean): Promise<void> {
		const producer = this.#producers.get(source);
		if (!producer) return;
		if (paused) producer.pause();
		else producer.resume();
		await this.#required(this.#signaling).request(paused ? "pauseProducer" : "resumeProducer", {
			producerId: producer.id,
		});
	}

	async toggleMic(): Promise<void> {
		if (!this.#producers.has("mic")) return;
		this.micOn = !this.micOn;
		for (const track of this.local.getAudioTracks()) track.enabled = this.micOn;
		this.onChange();
		await this.#setPaused("mic", !this.micOn);
	}

	async toggleCamera(): Promise<void> {
		if (!this.#producers.has("camera")) {
			// No camera yet (audio call, or it failed before): try to add one.
			const stream = await navigator.mediaDevices.getUserMedia({ video: CAMERA });
			const track = stream.getVideoTracks()[0];
			if (!track || !this.#send) return;
			this.local.addTrack(track);
			await this.#produce(track, "camera");
			this.cameraOn = true;
			this.onChange();
			return;
		}
		this.cameraOn = !this.cameraOn;
		for (const track of this.local.getVideoTracks()) track.enabled = this.cameraOn;
		this.onChange();
		await this.#setPaused("camera", !this.cameraOn);
	}

	async toggleScreen(): Promise<void> {
		const current = this.#producers.get("screen");
		if (current) {
			current.close();
			this.#producers.delete("screen");
			for (const track of this.screen?.getTracks() ?? []) track.stop();
			this.screen = undefined;
			this.onChange();
			await this.#signaling?.request("closeProducer", { producerId: current.id }).catch(() => {});
			return;
		}
		const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
		const track = stream.getVideoTracks()[0];
		if (!track) return;
		this.screen = stream;
		track.addEventListener("ended", () => {
			if (this.#producers.has("screen")) void this.toggleScreen();
		});
		await this.#produce(track, "screen");
		this.onChange();
	}

	/** Inbound video counters of this call's receive transport (for the stats panel and tests). */
	async stats(): Promise<InboundVideoStats> {
		const out = { framesDecoded: 0, packetsReceived: 0, bytesReceived: 0 };
		if (!this.#recv || this.#recv.closed) return out;
		const report = await this.#recv.getStats();
		report.forEach((stat: Record<string, unknown>) => {
			if (stat.type !== "inbound-rtp" || stat.kind !== "video") return;
			out.framesDecoded += Number(stat.framesDecoded ?? 0);
			out.packetsReceived += Number(stat.packetsReceived ?? 0);
			out.bytesReceived += Number(stat.bytesReceived ?? 0);
		});
		return out;
	}

	/** Leaves the call (the last one out ends it). */
	async hangUp(note = "You left the call."): Promise<void> {
		if (this.#ended || this.#leaving) return;
		this.#leaving = true;
		this.note = note;
		await this.#signaling?.request("leave", {}).catch(() => {});
		await this.session.request("POST", `/v1/calls/${this.callId}/leave`).catch(() => {});
		await this.end(note);
	}

	/** Stops media and closes everything; `note` says why. */
	async end(note: string): Promise<void> {
		if (this.#ended) return;
		this.#ended = true;
		this.status = "ended";
		this.note = note;
		this.#stopCallEvents();
		for (const track of [...this.local.getTracks(), ...(this.screen?.getTracks() ?? [])]) track.stop();
		this.#send?.close();
		this.#recv?.close();
		this.#signaling?.close();
		this.onChange();
	}

	#required<T>(value: T | undefined): T {
		if (value === undefined) throw new Error("The call is not connected.");
		return value;
	}
}
