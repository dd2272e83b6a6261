// One call as the screens see it: the api's call lifecycle (POST /v1/calls,
// join, decline, leave, and the call events of the user channel) around the
// SDK's media session (sdk/src/calls/CallSession.ts: mediasoup-client over
// the media node's signaling), turned into tiles: a stream per participant,
// their screen share, mute and camera state.
import type { Call, JoinInfo as JoinInfoSchema } from "@secureconnect/protocol";
import type { z } from "zod";
import { CallSession as MediaCall, type RemoteTrack, SecureConnectError } from "../../../sdk/src/index.ts";
import type { Session } from "../session.ts";

type JoinInfo = z.infer<typeof JoinInfoSchema>;
type CallRef = { id: string; conversationId: string; media: "audio" | "video" };

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
}

export type CallStatus = "connecting" | "ringing" | "live" | "ended";

export interface InboundVideoStats {
	framesDecoded: number;
	packetsReceived: number;
}

/** Modest video: two browsers and the SFU may share a small machine. */
const CAMERA: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
const CAMERA_ENCODINGS = [{ maxBitrate: 900_000 }];

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
	/** What this participant sends (for the local preview). */
	local: MediaStream = new MediaStream();
	screen: MediaStream | undefined;
	micOn = false;
	cameraOn = false;
	onChange: () => void = () => {};
	#media: MediaCall | undefined;
	#everJoined = false;
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
			// Someone found the media server gone and the api moved the call: follow it.
			if (frame.event === "moved") void this.#media?.reconnect();
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
	) {
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

	/** Which of microphone and camera this browser can open (asking for permission once). */
	async #available(): Promise<{ audio: boolean; video: boolean }> {
		const attempts =
			this.media === "video" ? [{ audio: true, video: true }, { audio: true }, { video: true }] : [{ audio: true }];
		for (const constraints of attempts) {
			try {
				const stream = await navigator.mediaDevices.getUserMedia(constraints);
				for (const track of stream.getTracks()) track.stop();
				return { audio: Boolean(constraints.audio), video: "video" in constraints };
			} catch {
				// Try with less (no camera, or no microphone).
			}
		}
		this.note = "No camera or microphone could be opened: you can see and hear the others, they can't see or hear you.";
		return { audio: false, video: false };
	}

	async #connect(join: JoinInfo): Promise<void> {
		try {
			const can = await this.#available();
			if (this.#ended) return;
			const media = await MediaCall.join({
				url: join.url,
				token: join.token,
				iceServers: join.iceServers,
				displayName: this.session.me.displayName,
				publish: { audio: can.audio, video: can.video ? CAMERA : false },
				simulcast: CAMERA_ENCODINGS,
				rejoin: async () => {
					try {
						const res = await this.session.request<{ join: JoinInfo }>("POST", `/v1/calls/${this.callId}/join`);
						return res.join;
					} catch (error) {
						if (error instanceof SecureConnectError && (error.status === 404 || error.status === 409)) return undefined;
						throw error;
					}
				},
				on: {
					participantJoined: ({ participant }) => {
						this.#peer(participant.id, participant.displayName);
						this.#everJoined = true;
						this.status = "live";
						if (!this.#ended) this.#tell("");
					},
					participantLeft: ({ peerId }) => this.#onLeft(peerId),
					trackAdded: (track) => this.#onTrack(track, true),
					trackRemoved: (track) => this.#onTrack(track, false),
					muteChanged: ({ peerId, source, muted }) => {
						const peer = this.peers.get(peerId);
						if (!peer) return;
						if (source === "mic") peer.micOff = muted;
						if (source === "camera") peer.cameraOff = muted;
						this.onChange();
					},
					activeSpeaker: ({ peerId }) => {
						this.activeSpeaker = peerId;
						this.onChange();
					},
					connectionStateChanged: ({ state }) => {
						if (state === "failed") this.#tell("The media connection failed. Check your network.");
					},
					draining: () => this.#tell("The media server is restarting; moving the call."),
					reconnecting: () => this.#tell("Connection to the media server lost; reconnecting…"),
					reconnected: ({ moved }) => this.#tell(moved ? "The call moved to another media server." : ""),
					ended: ({ reason, error }) => {
						if (this.#leaving) return;
						void this.end(
							reason === "ended" ? "The call ended." : `Call connection lost${error ? `: ${error.message}` : "."}`,
						);
					},
				},
			});
			this.#media = media;
			if (this.#ended) {
				await media.leave();
				return;
			}
			const mic = media.localTrack("mic");
			const camera = media.localTrack("camera");
			this.local = new MediaStream([mic, camera].filter((t): t is MediaStreamTrack => Boolean(t)));
			this.micOn = Boolean(mic);
			this.cameraOn = Boolean(camera);
			this.onChange();
		} catch (error) {
			await this.end(`Could not join the call: ${error instanceof Error ? error.message : String(error)}`);
		}
	}

	#peer(id: string, displayName: string): RemotePeer {
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
			};
			this.peers.set(id, peer);
		}
		return peer;
	}

	#onTrack(track: RemoteTrack, added: boolean): void {
		const peer = this.#peer(track.peerId, "");
		if (track.source === "screen") peer.screen = added ? new MediaStream([track.track]) : undefined;
		else if (added) peer.stream.addTrack(track.track);
		else peer.stream.removeTrack(track.track);
		if (added && track.source === "mic") peer.micOff = track.paused;
		if (added && track.source === "camera") peer.cameraOff = track.paused;
		peer.hasVideo = peer.stream.getVideoTracks().length > 0;
		if (added) this.status = "live";
		this.onChange();
	}

	#onLeft(peerId: string): void {
		const peer = this.peers.get(peerId);
		this.peers.delete(peerId);
		if (peer) this.note = `${peer.name} left the call.`;
		// A two-person call is over when the other person leaves.
		if (this.peers.size === 0 && this.#everJoined) void this.hangUp(this.note);
		else this.onChange();
	}

	// ------------------------------------------------------------ controls

	/** Whether a camera is being sent at all (an audio call, or no camera, has none). */
	get hasCamera(): boolean {
		return Boolean(this.#media?.localTrack("camera"));
	}

	async toggleMic(): Promise<void> {
		if (!this.#media?.localTrack("mic")) throw new Error("No microphone is being sent.");
		this.micOn = !this.micOn;
		this.onChange();
		await this.#media.setMicrophoneMuted(!this.micOn);
	}

	async toggleCamera(): Promise<void> {
		if (!this.#media?.localTrack("camera")) throw new Error("No camera is being sent in this call.");
		this.cameraOn = !this.cameraOn;
		this.onChange();
		await this.#media.setCameraMuted(!this.cameraOn);
	}

	async toggleScreen(): Promise<void> {
		const media = this.#media;
		if (!media) return;
		if (this.screen) {
			this.screen = undefined;
			this.onChange();
			await media.stopScreenShare();
			return;
		}
		const track = await media.startScreenShare();
		this.screen = new MediaStream([track]);
		// The browser's own "stop sharing" ends the track; the SDK closes the producer.
		track.addEventListener("ended", () => {
			this.screen = undefined;
			this.onChange();
		});
		this.onChange();
	}

	/** Inbound video counters (for the end-to-end test, and useful when debugging). */
	async stats(): Promise<InboundVideoStats> {
		if (!this.#media || this.#media.ended) return { framesDecoded: 0, packetsReceived: 0 };
		const { video } = await this.#media.getStats();
		return { framesDecoded: video.framesDecoded, packetsReceived: video.packetsReceived };
	}

	/** Leaves the call (the last one out ends it). */
	async hangUp(note = "You left the call."): Promise<void> {
		if (this.#ended || this.#leaving) return;
		this.#leaving = true;
		this.note = note;
		await this.#media?.leave();
		await this.session.request("POST", `/v1/calls/${this.callId}/leave`).catch(() => {});
		await this.end(note);
	}

	/** Stops media and closes everything; `note` says why. */
	async end(note: string): Promise<void> {
		if (this.#ended) return;
		this.#ended = true;
		this.#leaving = true;
		this.status = "ended";
		this.note = note;
		this.#stopCallEvents();
		for (const track of [...this.local.getTracks(), ...(this.screen?.getTracks() ?? [])]) track.stop();
		this.onChange();
		await this.#media?.leave().catch(() => {});
	}
}
