// Real media through the SFU: Node peers (mediasoup-client + @roamhq/wrtc)
// send audio and simulcast video; others receive packets through the node.
// The call is spread over two workers (a tiny consumer budget), so one
// receiver gets the media through pipeToRouter.

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
	callToken,
	FakeApi,
	RequestError,
	type SigningKey,
	signingKey,
	startNode,
	TEST_SECRET,
	type TestNode,
	waitFor,
} from "./testing/fixtures.ts";
import { installWrtcGlobals, RtcPeer } from "./testing/rtcPeer.ts";

const CALL = "call_mmmmmmmmmmmmmmmm";

let api: FakeApi;
let key: SigningKey;
let target: TestNode;
const peers: RtcPeer[] = [];

beforeAll(async () => {
	installWrtcGlobals();
	api = await FakeApi.start();
	key = await signingKey("kid-media");
	api.keys.push(key);
	// Budget 4: the first two peers share a router; the third needs another worker.
	target = await startNode({
		API_URL: api.url,
		MEDIA_NODE_SECRET: TEST_SECRET,
		MEDIA_WORKERS: "2",
		MEDIA_ROUTER_MAX_CONSUMERS: "4",
		MEDIA_STATS_INTERVAL_MS: "300",
		LOG_LEVEL: "info",
	});
});

afterAll(async () => {
	await Promise.all(peers.map((peer) => peer.close()));
	await target?.node.close();
	await api?.close();
});

async function peer(userId: string, perm: string[], options: { send?: boolean } = {}): Promise<RtcPeer> {
	const token = await callToken({ key, issuer: api.url, userId, callId: CALL, perm });
	const created = await RtcPeer.connect(target.url, token);

	peers.push(created);
	await created.enter(`User ${userId}`, options);

	return created;
}

describe("media through the SFU", () => {
	it("delivers audio and video, mute states, layers and screen share; cleans up on leave", async () => {
		const alice = await peer("usr_alice", ["publish", "subscribe", "screen"], { send: true });
		const bob = await peer("usr_bob", ["publish", "subscribe"]);
		const carol = await peer("usr_carol", ["subscribe"]);
		const room = target.node.rooms.get(CALL);

		// Two routers on two different workers.
		expect(room?.routerCount).toBe(2);
		expect(new Set(room?.workerIndexes).size).toBe(2);

		const { mic, camera } = await alice.produceMicAndCamera();

		for (const receiver of [bob, carol]) {
			await waitFor(() => receiver.consumers.size === 2, { what: "two consumers" });
		}

		// Packets and bytes arrive on both receivers' transports (bob: same router, carol: piped).
		for (const receiver of [bob, carol]) {
			let last = await receiver.inboundStats();

			// Decoded frames, not just packets: a mediasoup bandwidth probe alone would count as video packets.
			for (let i = 0; i < 100 && !(last.audio.packets > 10 && last.video.framesDecoded > 0); i++) {
				await new Promise((resolve) => setTimeout(resolve, 100));
				last = await receiver.inboundStats();
			}
			expect(last.audio.packets).toBeGreaterThan(10);
			expect(last.audio.bytes).toBeGreaterThan(0);
			expect(last.video.packets).toBeGreaterThan(0);
			expect(last.video.bytes).toBeGreaterThan(0);
			expect(last.video.framesDecoded).toBeGreaterThan(0);
		}

		const videoNotice = bob.signaling.notifications("newConsumer").find((c) => c.kind === "video");

		expect(videoNotice).toMatchObject({ peerId: "usr_alice", type: "simulcast", appData: { source: "camera" } });

		// Simulcast layer choice.
		if (!videoNotice) {
			throw new Error("no video consumer");
		}
		await bob.signaling.request("setConsumerPreferredLayers", { consumerId: videoNotice.id, spatialLayer: 0 });
		await bob.signaling.notification("consumerLayersChanged", (l) => l.consumerId === videoNotice.id);

		// Mute: the others see the producer paused, their consumers too.
		await alice.signaling.request("pauseProducer", { producerId: mic.id });
		expect(await bob.signaling.notification("producerPaused")).toEqual({
			peerId: "usr_alice",
			producerId: mic.id,
			source: "mic",
		});

		const bobAudio = bob.signaling.notifications("newConsumer").find((c) => c.kind === "audio");

		await bob.signaling.notification("consumerPaused", (c) => c.consumerId === bobAudio?.id);
		await carol.signaling.notification("producerPaused");
		await alice.signaling.request("resumeProducer", { producerId: mic.id });
		await bob.signaling.notification("producerResumed");
		await bob.signaling.notification("consumerResumed", (c) => c.consumerId === bobAudio?.id);

		// Active speaker (the tone is loud).
		expect(await bob.signaling.notification("activeSpeaker", (s) => s.peerId === "usr_alice")).toEqual({
			peerId: "usr_alice",
			producerId: mic.id,
		});

		// Screen share needs the "screen" permission.
		const screen = await alice.produceScreen();

		await carol.signaling.notification("newConsumer", (c) => c.appData.source === "screen");
		await waitFor(() => bob.consumers.size === 3 && carol.consumers.size === 3, { what: "screen consumers" });
		await expect(bob.produceScreen()).rejects.toThrow(/screen sharing/);
		await expect(
			bob.signaling.request("produce", {
				transportId: bob.sendTransport?.id ?? "",
				kind: "video",
				rtpParameters: { codecs: [{ mimeType: "video/VP8", payloadType: 96, clockRate: 90000 }] },
				appData: { source: "screen" },
			}),
		).rejects.toBeInstanceOf(RequestError);

		// /metrics: counters and sampled bitrates.
		const metrics = async () => await (await fetch(`${target.httpUrl}/metrics`)).text();
		const value = (body: string, name: string) =>
			Number(
				body
					.split("\n")
					.find((l) => l.startsWith(`${name} `))
					?.split(" ")[1],
			);
		let body = await metrics();

		for (let i = 0; i < 50 && !(value(body, "secureconnect_media_recv_bitrate_bps") > 0); i++) {
			await new Promise((resolve) => setTimeout(resolve, 100));
			body = await metrics();
		}
		expect(value(body, "secureconnect_media_peers")).toBe(3);
		expect(value(body, "secureconnect_media_producers")).toBe(3);
		expect(value(body, "secureconnect_media_consumers")).toBe(6);
		expect(value(body, "secureconnect_media_recv_bitrate_bps")).toBeGreaterThan(0);
		expect(value(body, "secureconnect_media_send_bitrate_bps")).toBeGreaterThan(0);

		// Alice leaves: the others get peerLeft and consumerClosed for each of her consumers.
		await alice.signaling.request("leave", {});
		for (const receiver of [bob, carol]) {
			expect(await receiver.signaling.notification("peerLeft")).toEqual({ peerId: "usr_alice" });
			await waitFor(() => receiver.signaling.notifications("consumerClosed").length === 3, {
				what: "three consumerClosed",
			});
		}
		expect(new Set(carol.signaling.notifications("consumerClosed").map((c) => c.consumerId))).toEqual(
			new Set(carol.signaling.notifications("newConsumer").map((c) => c.id)),
		);
		expect(target.node.rooms.counts()).toMatchObject({ peers: 2, producers: 0, consumers: 0 });
		expect(camera.closed && screen.closed).toBe(false);
	});
});
