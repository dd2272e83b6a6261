// RTC settings shared by everything that creates routers and transports.

import type { types } from "mediasoup";

import type { MediaNodeConfig } from "./config.ts";

/** Codecs every router offers: Opus for audio, VP8 for video. */
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
];

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
