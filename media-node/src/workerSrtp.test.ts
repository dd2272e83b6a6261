// End-to-end check of SRTP inside the mediasoup worker binary we run. It
// matters because the offline build swaps libsrtp 3 for Debian's libsrtp 2
// behind a shim header (media-node/scripts/mediasoup-offline/), and
// mediasoup's own test suite never encrypts a packet.
//
// Path of one RTP packet, all on 127.0.0.1:
//   node UDP --RTP--> plain P1 -> router -> SRTP transport S1 --SRTP--> relay
//   relay (records the ciphertext) --SRTP--> SRTP transport S2 -> router
//   -> plain P2 --RTP--> node UDP sink
// The sink must get the original payload back, and the relay must have seen
// it encrypted, grown by the suite's authentication tag.

import dgram from "node:dgram";
import type { types } from "mediasoup";
import { afterEach, describe, expect, it } from "vitest";

import { Logger } from "./Logger.ts";
import { DEFAULT_MEDIA_CODECS } from "./rtc.ts";
import { WorkerPool } from "./WorkerPool.ts";

const LOOPBACK = "127.0.0.1";
const LISTEN_INFO: types.TransportListenInfo = { protocol: "udp", ip: LOOPBACK };
const RTP_HEADER_LEN = 12;
const OPUS_PAYLOAD_TYPE = 100;
const SOURCE_SSRC = 11_111_111;
const SEND_INTERVAL_MS = 10;
const TIMEOUT_MS = 5_000;

// SRTP authentication tag length per suite (RFC 3711, RFC 7714).
const TAG_LENGTH: Record<types.SrtpCryptoSuite, number> = {
	AES_CM_128_HMAC_SHA1_80: 10,
	AES_CM_128_HMAC_SHA1_32: 4,
	AEAD_AES_128_GCM: 16,
	AEAD_AES_256_GCM: 16,
};

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) {
		await cleanup();
	}
});

async function udpSocket(): Promise<dgram.Socket> {
	const socket = dgram.createSocket("udp4");

	await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
	cleanups.push(() => {
		socket.close();
	});

	return socket;
}

function rtpPacket(seq: number, payload: Buffer): Buffer {
	const header = Buffer.alloc(RTP_HEADER_LEN);

	header[0] = 0x80; // version 2, no padding/extension/CSRC
	header[1] = OPUS_PAYLOAD_TYPE;
	header.writeUInt16BE(seq, 2);
	header.writeUInt32BE(seq * 960, 4);
	header.writeUInt32BE(SOURCE_SSRC, 8);

	return Buffer.concat([header, payload]);
}

// RTCP shares the port (rtcp-mux); its packet types 192-223 occupy the byte
// where RTP has marker + payload type (RFC 5761).
function isRtcp(packet: Buffer): boolean {
	const secondByte = packet[1] ?? 0;

	return secondByte >= 192 && secondByte <= 223;
}

// Payload of an RTP packet, skipping the fixed header, CSRCs and a header
// extension (mediasoup adds extensions on the way out).
function rtpPayload(packet: Buffer): Buffer {
	const first = packet[0] ?? 0;
	let offset = RTP_HEADER_LEN + (first & 0x0f) * 4;

	if (first & 0x10) {
		offset += 4 + packet.readUInt16BE(offset + 2) * 4;
	}

	return packet.subarray(offset);
}

describe("mediasoup worker SRTP", () => {
	it.each(Object.keys(TAG_LENGTH) as types.SrtpCryptoSuite[])("round-trips RTP through %s", async (suite) => {
		const pool = await WorkerPool.create({ size: 1, logger: Logger.create({ sink: () => {} }) });

		cleanups.push(() => pool.close());

		const router = await pool.createRouter({ mediaCodecs: DEFAULT_MEDIA_CODECS });
		const source = await udpSocket();
		const relay = await udpSocket();
		const sink = await udpSocket();

		// Entry: plain RTP from `source`.
		const p1 = await router.createPlainTransport({ listenInfo: LISTEN_INFO, rtcpMux: true, comedia: true });
		const producer1 = await p1.produce({
			kind: "audio",
			rtpParameters: {
				codecs: [{ mimeType: "audio/opus", payloadType: OPUS_PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
				encodings: [{ ssrc: SOURCE_SSRC }],
			},
		});

		// SRTP leg: S1 encrypts towards the relay, S2 decrypts what the relay forwards.
		const s1 = await router.createPlainTransport({
			listenInfo: LISTEN_INFO,
			rtcpMux: true,
			comedia: false,
			enableSrtp: true,
			srtpCryptoSuite: suite,
		});
		const s2 = await router.createPlainTransport({
			listenInfo: LISTEN_INFO,
			rtcpMux: true,
			comedia: false,
			enableSrtp: true,
			srtpCryptoSuite: suite,
		});

		expect(s1.srtpParameters?.cryptoSuite).toBe(suite);
		expect(s2.srtpParameters?.cryptoSuite).toBe(suite);

		// Each side decrypts with the other side's key.
		await s1.connect({ ip: LOOPBACK, port: relay.address().port, srtpParameters: s2.srtpParameters });
		await s2.connect({ ip: LOOPBACK, port: relay.address().port, srtpParameters: s1.srtpParameters });

		const consumer1 = await s1.consume({ producerId: producer1.id, rtpCapabilities: router.rtpCapabilities });
		const producer2 = await s2.produce({ kind: "audio", rtpParameters: consumer1.rtpParameters });

		// Exit: plain RTP to `sink`.
		const p2 = await router.createPlainTransport({ listenInfo: LISTEN_INFO, rtcpMux: true, comedia: false });

		await p2.connect({ ip: LOOPBACK, port: sink.address().port });
		await p2.consume({ producerId: producer2.id, rtpCapabilities: router.rtpCapabilities });

		const ciphertexts: Buffer[] = [];

		relay.on("message", (msg, rinfo) => {
			if (rinfo.port !== s1.tuple.localPort) {
				return;
			}
			if (!isRtcp(msg)) {
				ciphertexts.push(msg);
			}
			relay.send(msg, s2.tuple.localPort, LOOPBACK);
		});

		const payload = Buffer.from(`secureconnect-srtp-check-${suite}`);
		const received = new Promise<Buffer>((resolve) => {
			sink.on("message", (msg) => {
				if (!isRtcp(msg)) {
					resolve(msg);
				}
			});
		});

		let seq = 1;
		const sender = setInterval(() => {
			source.send(rtpPacket(seq++, payload), p1.tuple.localPort, LOOPBACK);
		}, SEND_INTERVAL_MS);

		cleanups.push(() => clearInterval(sender));

		const packet = await Promise.race([
			received,
			new Promise<never>((_, reject) =>
				setTimeout(() => reject(new Error("no RTP came out of the SRTP leg")), TIMEOUT_MS),
			),
		]);

		clearInterval(sender);

		expect(rtpPayload(packet).equals(payload)).toBe(true);

		// On the wire between S1 and S2 the payload was encrypted and tagged.
		expect(ciphertexts.length).toBeGreaterThan(0);

		const wire = ciphertexts[0] ?? Buffer.alloc(0);
		const plainLength = RTP_HEADER_LEN + payload.length;

		expect(wire.includes(payload)).toBe(false);
		expect(rtpPayload(wire).length).toBe(payload.length + TAG_LENGTH[suite]);
		expect(wire.length).toBeGreaterThanOrEqual(plainLength + TAG_LENGTH[suite]);
	});
});
