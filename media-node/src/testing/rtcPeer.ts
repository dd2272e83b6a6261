// A real WebRTC participant in Node for tests: mediasoup-client (Chrome111
// handler) over @roamhq/wrtc, driven through the node's signaling. Sends
// synthetic audio (a tone) and video (changing I420 frames) from wrtc's
// nonstandard sources; consumes whatever the node announces.

import { createRequire } from "node:module";

import { type types as client, Device } from "mediasoup-client";

import type { MediaSource, RtcNotificationData } from "../../../protocol/src/signaling.ts";
import { type ServerFrame, SignalingClient } from "./fixtures.ts";

type Track = { stop(): void; kind: string };
type Wrtc = {
	nonstandard: {
		RTCVideoSource: new (init?: {
			isScreencast?: boolean;
		}) => {
			createTrack(): Track;
			onFrame(frame: { width: number; height: number; data: Uint8ClampedArray }): void;
		};
		RTCAudioSource: new () => {
			createTrack(): Track;
			onData(data: {
				samples: Int16Array;
				sampleRate: number;
				bitsPerSample: number;
				channelCount: number;
				numberOfFrames: number;
			}): void;
		};
	};
} & Record<string, unknown>;

const wrtc = createRequire(import.meta.url)("@roamhq/wrtc") as Wrtc;

/** mediasoup-client's Chrome111 handler uses the global WebRTC classes. */
export function installWrtcGlobals(): void {
	const names = [
		"RTCPeerConnection",
		"RTCSessionDescription",
		"RTCIceCandidate",
		"MediaStream",
		"MediaStreamTrack",
		"RTCRtpSender",
		"RTCRtpReceiver",
		"RTCRtpTransceiver",
	];

	for (const name of names) {
		(globalThis as Record<string, unknown>)[name] = wrtc[name];
	}
}

const WIDTH = 320;
const HEIGHT = 240;
const SAMPLE_RATE = 48_000;
const FRAMES_PER_10MS = SAMPLE_RATE / 100;

export type InboundStats = {
	audio: { packets: number; bytes: number };
	video: { packets: number; bytes: number; framesDecoded: number };
};

export class RtcPeer {
	readonly signaling: SignalingClient;
	readonly device: Device;
	readonly consumers = new Map<string, client.Consumer>();
	readonly producers = new Map<string, client.Producer>();
	sendTransport: client.Transport | undefined;
	recvTransport: client.Transport | undefined;
	join: { peerId: string; peers: unknown[] } | undefined;
	#timers: NodeJS.Timeout[] = [];
	#tracks: Track[] = [];
	#consuming: Promise<void> = Promise.resolve();

	static async connect(url: string, token: string): Promise<RtcPeer> {
		const signaling = await SignalingClient.open(url, token);

		await signaling.notification("ready");

		return new RtcPeer(signaling);
	}

	private constructor(signaling: SignalingClient) {
		this.signaling = signaling;
		this.device = new Device({ handlerName: "Chrome111" });
		signaling.on((frame) => this.#onFrame(frame));
	}

	/** Loads the device, joins, and opens a receive transport (and a send one if asked). */
	async enter(displayName: string, { send = false }: { send?: boolean } = {}): Promise<void> {
		const { rtpCapabilities } = await this.signaling.request("getRouterRtpCapabilities", {});

		await this.device.load({ routerRtpCapabilities: rtpCapabilities as client.RtpCapabilities });
		this.join = await this.signaling.request("join", {
			rtpCapabilities: this.device.rtpCapabilities as Record<string, unknown>,
			displayName,
		});
		if (send) {
			await this.openSendTransport();
		}
		await this.openRecvTransport();
	}

	async openSendTransport(): Promise<client.Transport> {
		const info = await this.signaling.request("createWebRtcTransport", { direction: "send" });
		const transport = this.device.createSendTransport(info as client.TransportOptions);

		transport.on("connect", ({ dtlsParameters }, callback, errback) => {
			this.signaling
				.request("connectWebRtcTransport", { transportId: transport.id, dtlsParameters })
				.then(() => callback(), errback);
		});
		transport.on("produce", ({ kind, rtpParameters, appData }, callback, errback) => {
			this.signaling
				.request("produce", {
					transportId: transport.id,
					kind,
					rtpParameters: rtpParameters as Record<string, unknown>,
					appData: { source: appData.source as MediaSource },
				})
				.then(({ id }) => callback({ id }), errback);
		});
		this.sendTransport = transport;

		return transport;
	}

	async openRecvTransport(): Promise<client.Transport> {
		const info = await this.signaling.request("createWebRtcTransport", { direction: "recv" });
		const transport = this.device.createRecvTransport(info as client.TransportOptions);

		transport.on("connect", ({ dtlsParameters }, callback, errback) => {
			this.signaling
				.request("connectWebRtcTransport", { transportId: transport.id, dtlsParameters })
				.then(() => callback(), errback);
		});
		this.recvTransport = transport;

		return transport;
	}

	/** Starts a microphone-like tone and a camera-like video (simulcast, two layers). */
	async produceMicAndCamera(): Promise<{ mic: client.Producer; camera: client.Producer }> {
		const mic = await this.#produce(this.#audioTrack(), "mic");
		const camera = await this.#produce(this.#videoTrack(false), "camera", [
			{ rid: "r0", scaleResolutionDownBy: 2, maxBitrate: 100_000 },
			{ rid: "r1", scaleResolutionDownBy: 1, maxBitrate: 300_000 },
		]);

		return { mic, camera };
	}

	async produceScreen(): Promise<client.Producer> {
		return await this.#produce(this.#videoTrack(true), "screen");
	}

	async inboundStats(): Promise<InboundStats> {
		const out: InboundStats = {
			audio: { packets: 0, bytes: 0 },
			video: { packets: 0, bytes: 0, framesDecoded: 0 },
		};

		if (!this.recvTransport) {
			return out;
		}

		const report = (await this.recvTransport.getStats()) as Map<string, Record<string, unknown>>;

		for (const stat of report.values()) {
			if (stat.type !== "inbound-rtp") {
				continue;
			}

			const kind = stat.kind === "audio" ? "audio" : "video";

			out[kind].packets += Number(stat.packetsReceived ?? 0);
			out[kind].bytes += Number(stat.bytesReceived ?? 0);
			if (kind === "video") {
				out.video.framesDecoded += Number(stat.framesDecoded ?? 0);
			}
		}

		return out;
	}

	async close(): Promise<void> {
		for (const timer of this.#timers.splice(0)) {
			clearInterval(timer);
		}
		for (const track of this.#tracks.splice(0)) {
			track.stop();
		}
		this.sendTransport?.close();
		this.recvTransport?.close();
		this.signaling.close();
		await Promise.race([this.signaling.closed, new Promise((resolve) => setTimeout(resolve, 1_000))]);
	}

	async #produce(
		track: Track,
		source: MediaSource,
		encodings?: client.RtpEncodingParameters[],
	): Promise<client.Producer> {
		const transport = this.sendTransport ?? (await this.openSendTransport());
		const producer = await transport.produce({
			track: track as unknown as client.ProducerOptions["track"],
			...(encodings ? { encodings } : {}),
			appData: { source },
		});

		this.producers.set(producer.id, producer);

		return producer;
	}

	#audioTrack(): Track {
		const source = new wrtc.nonstandard.RTCAudioSource();
		const track = source.createTrack();
		const samples = new Int16Array(FRAMES_PER_10MS);
		let t = 0;

		this.#timers.push(
			setInterval(() => {
				for (let i = 0; i < samples.length; i++, t++) {
					samples[i] = Math.round(Math.sin((2 * Math.PI * 440 * t) / SAMPLE_RATE) * 12_000);
				}
				source.onData({
					samples,
					sampleRate: SAMPLE_RATE,
					bitsPerSample: 16,
					channelCount: 1,
					numberOfFrames: FRAMES_PER_10MS,
				});
			}, 10),
		);
		this.#tracks.push(track);

		return track;
	}

	#videoTrack(isScreencast: boolean): Track {
		const source = new wrtc.nonstandard.RTCVideoSource({ isScreencast });
		const track = source.createTrack();
		const data = new Uint8ClampedArray(WIDTH * HEIGHT * 1.5);
		let n = 0;

		this.#timers.push(
			setInterval(() => {
				n++;
				// Moving luma bands, flat chroma: cheap, and never a static image.
				for (let y = 0; y < HEIGHT; y++) {
					data.fill((y * 4 + n * 8) % 256, y * WIDTH, (y + 1) * WIDTH);
				}
				data.fill(128, WIDTH * HEIGHT);
				source.onFrame({ width: WIDTH, height: HEIGHT, data });
			}, 50),
		);
		this.#tracks.push(track);

		return track;
	}

	#onFrame(frame: ServerFrame): void {
		if (frame.type !== "notification") {
			return;
		}
		if (frame.method === "newConsumer") {
			const data = frame.data as RtcNotificationData<"newConsumer">;

			this.#consuming = this.#consuming.then(() => this.#consume(data)).catch(() => {});
		} else if (frame.method === "consumerClosed") {
			const { consumerId } = frame.data as RtcNotificationData<"consumerClosed">;

			this.consumers.get(consumerId)?.close();
			this.consumers.delete(consumerId);
		}
	}

	async #consume(data: RtcNotificationData<"newConsumer">): Promise<void> {
		const transport = this.recvTransport;

		if (!transport || transport.closed) {
			return;
		}

		const consumer = await transport.consume({
			id: data.id,
			producerId: data.producerId,
			kind: data.kind,
			rtpParameters: data.rtpParameters as client.RtpParameters,
			appData: { peerId: data.peerId, source: data.appData.source },
		});

		this.consumers.set(consumer.id, consumer);
		await this.signaling.request("resumeConsumer", { consumerId: consumer.id });
	}
}
