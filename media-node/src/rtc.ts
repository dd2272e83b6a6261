// RTC settings shared by everything that creates routers and transports.

import type { types } from "mediasoup";

import type { MediaNodeConfig } from "./config.ts";

/**
 * Codecs every router offers: Opus for audio; VP8 (first, so it is what
 * clients send by default: simulcast everywhere) and H264 constrained
 * baseline (hardware encoders on phones) for video.
 */
export const DEFAULT_MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
	{
		kind: "audio",
		mimeType: "audio/opus",
		clockRate: 48000,
		channels: 2,
	},
	{
		kind: "video",
		mimeType: "video/VP8",
		clockRate: 90000,
		parameters: { "x-google-start-bitrate": 1000 },
	},
	{
		kind: "video",
		mimeType: "video/H264",
		clockRate: 90000,
		parameters: {
			"packetization-mode": 1,
			"profile-level-id": "42e01f",
			"level-asymmetry-allowed": 1,
			"x-google-start-bitrate": 1000,
		},
	},
];

/** Outgoing bitrate a new WebRTC transport starts its estimate at (bps). */
export const INITIAL_OUTGOING_BITRATE = 1_000_000;
/** Cap on what one peer may send to the node (bps): camera simulcast + screen. */
export const MAX_INCOMING_BITRATE = 6_000_000;

/**
 * Listen infos for WebRTC transports: UDP first (preferred by ICE), then TCP,
 * both on the configured IP and port range, announcing the configured address
 * in ICE candidates.
 */
export function webRtcListenInfos(rtc: MediaNodeConfig["rtc"]): types.TransportListenInfo[] {
	const portRange = { min: rtc.minPort, max: rtc.maxPort };

	return (["udp", "tcp"] as const).map((protocol) => ({
		protocol,
		ip: rtc.listenIp,
		announcedAddress: rtc.announcedAddress,
		portRange,
	}));
}

/**
 * Listen infos of worker `index`'s WebRtcServer: one UDP and one TCP socket on
 * port `rtc.port + index` (every transport of that worker shares them), or
 * any free port of the range when `rtc.port` is 0.
 */
export function webRtcServerListenInfos(rtc: MediaNodeConfig["rtc"], index: number): types.TransportListenInfo[] {
	return (["udp", "tcp"] as const).map((protocol) => ({
		protocol,
		ip: rtc.listenIp,
		announcedAddress: rtc.announcedAddress,
		...(rtc.port === 0 ? { portRange: { min: rtc.minPort, max: rtc.maxPort } } : { port: rtc.port + index }),
	}));
}

/** Where pipe transports between two routers of a call (different workers) listen. */
export function pipeListenInfo(rtc: MediaNodeConfig["rtc"]): types.TransportListenInfo {
	return { protocol: "udp", ip: "127.0.0.1", portRange: { min: rtc.minPort, max: rtc.maxPort } };
}
