// Media-node signaling: the WebSocket at `ws(s)://<media node>/v1/rtc` that a
// call participant opens with a call token, and the call token's claims.
//
// Frames are JSON text. Every request and notification is declared once
// below; the media node parses with these schemas and the SDK can derive its
// types from them. Shapes follow mediasoup-demo:
//
//   client → node  {type:"request", id, method, data}
//   node → client  {type:"response", id, ok:true, data}
//                  {type:"response", id, ok:false, error:{code, message}}
//   node → client  {type:"notification", method, data}
//   node → client  {type:"error", code, message}        (then the node closes)
//
// RTP/ICE/DTLS parameter objects are mediasoup's (mediasoup-client produces
// and consumes them as they are); the schemas here check their outline and
// size, and mediasoup validates the rest. Media payloads are never inspected,
// so insertable-streams (E2EE) media passes through untouched.
//
// Keep this file free of Node APIs: it also compiles for the Workers runtime.
import { z } from "zod";

/** Path of the signaling WebSocket on a media node. */
export const RTC_PATH = "/v1/rtc";
/** `aud` of every call token. */
export const MEDIA_TOKEN_AUDIENCE = "secureconnect-media";
/** A call token's `exp - iat` must not exceed this. */
export const CALL_TOKEN_MAX_TTL_SECONDS = 120;
/** Without a `bearer.<token>` subprotocol, the first frame must be `{type:"auth"}` within this long. */
export const RTC_AUTH_TIMEOUT_MS = 10_000;
/** Largest frame a media node accepts (bytes). */
export const RTC_MAX_FRAME_BYTES = 256 * 1024;

/** WebSocket close codes a media node uses (1000/1001 keep their usual meaning). */
export const RTC_CLOSE_CODES = {
	/** The peer sent `leave`. */
	NORMAL: 1000,
	/** The node is shutting down. */
	GOING_AWAY: 1001,
	/** A frame that is not JSON or not a known message, or too large. */
	POLICY_VIOLATION: 1008,
	/** No worker, no key set, node full or draining: ask the api for a (new) node. */
	TRY_AGAIN_LATER: 1013,
	/** Missing, invalid, expired or unverifiable token. */
	UNAUTHORIZED: 4001,
	/** The token does not allow this. */
	FORBIDDEN: 4003,
	/** No `auth` frame in time. */
	AUTH_TIMEOUT: 4008,
	/** Another socket of the same user joined this call. */
	REPLACED: 4009,
	/** The call was ended (see the `callEnded` notification's reason). */
	CALL_ENDED: 4010,
	/** The call already has its maximum number of participants. */
	CALL_FULL: 4029,
} as const;

export const RTC_ERROR_CODES = [
	"BAD_REQUEST",
	"UNAUTHORIZED",
	"INVALID_TOKEN",
	"TOKEN_EXPIRED",
	"FORBIDDEN",
	"NOT_FOUND",
	"NOT_JOINED",
	"CONFLICT",
	"CALL_FULL",
	"RATE_LIMITED",
	"AUTH_TIMEOUT",
	"REPLACED",
	"DRAINING",
	"SERVICE_UNAVAILABLE",
	"INTERNAL_ERROR",
] as const;
export const RtcErrorCode = z.enum(RTC_ERROR_CODES);
export type RtcErrorCode = z.infer<typeof RtcErrorCode>;

// --- call token ------------------------------------------------------------

export const CallPermission = z.enum(["publish", "subscribe", "screen"]);
export type CallPermission = z.infer<typeof CallPermission>;

/** Claims of a call token (a JWT, alg EdDSA, header `kid`, signed by the api). */
export const CallTokenClaims = z.object({
	iss: z.string().min(1),
	aud: z.union([z.literal(MEDIA_TOKEN_AUDIENCE), z.array(z.string()).min(1)]),
	/** User id. */
	sub: z.string().min(1).max(128),
	/** Call id. */
	cid: z.string().min(1).max(128),
	/** Device id. */
	did: z.string().min(1).max(128).optional(),
	perm: z.array(CallPermission).max(3),
	iat: z.number().int(),
	exp: z.number().int(),
	jti: z.string().max(128).optional(),
	/** The api request that issued the token; the node logs it as `requestId`. */
	rid: z.string().max(128).optional(),
});
export type CallTokenClaims = z.infer<typeof CallTokenClaims>;

// --- mediasoup parameter outlines --------------------------------------------

const shortString = z.string().max(256);
const smallList = <T extends z.ZodType>(item: T) => z.array(item).max(64);
const parameters = z.record(z.string().max(64), z.unknown()).optional();

const RtcpFeedback = z.looseObject({ type: shortString, parameter: shortString.optional() });

const RtpCodecCapability = z.looseObject({
	kind: z.enum(["audio", "video"]),
	mimeType: shortString,
	preferredPayloadType: z.number().int().min(0).max(127).optional(),
	clockRate: z.number().int().positive(),
	channels: z.number().int().positive().optional(),
	parameters,
	rtcpFeedback: smallList(RtcpFeedback).optional(),
});

const RtpHeaderExtension = z.looseObject({
	kind: z.enum(["audio", "video"]),
	uri: shortString,
	preferredId: z.number().int(),
	preferredEncrypt: z.boolean().optional(),
	direction: z.enum(["sendrecv", "sendonly", "recvonly", "inactive"]).optional(),
});

export const RtpCapabilities = z.looseObject({
	codecs: smallList(RtpCodecCapability).optional(),
	headerExtensions: smallList(RtpHeaderExtension).optional(),
});
export type RtpCapabilities = z.infer<typeof RtpCapabilities>;

const RtpCodecParameters = z.looseObject({
	mimeType: shortString,
	payloadType: z.number().int().min(0).max(127),
	clockRate: z.number().int().positive(),
	channels: z.number().int().positive().optional(),
	parameters,
	rtcpFeedback: smallList(RtcpFeedback).optional(),
});

const RtpEncodingParameters = z.looseObject({
	ssrc: z.number().int().nonnegative().optional(),
	rid: shortString.optional(),
	codecPayloadType: z.number().int().optional(),
	rtx: z.looseObject({ ssrc: z.number().int().nonnegative() }).optional(),
	dtx: z.boolean().optional(),
	scalabilityMode: shortString.optional(),
	scaleResolutionDownBy: z.number().positive().optional(),
	maxBitrate: z.number().nonnegative().optional(),
});

export const RtpParameters = z.looseObject({
	mid: shortString.optional(),
	codecs: smallList(RtpCodecParameters).min(1),
	headerExtensions: smallList(
		z.looseObject({ uri: shortString, id: z.number().int(), encrypt: z.boolean().optional(), parameters }),
	).optional(),
	encodings: z.array(RtpEncodingParameters).max(8).optional(),
	rtcp: z.looseObject({ cname: shortString.optional(), reducedSize: z.boolean().optional() }).optional(),
	msid: shortString.optional(),
});
export type RtpParameters = z.infer<typeof RtpParameters>;

export const IceParameters = z.object({
	usernameFragment: shortString,
	password: shortString,
	iceLite: z.boolean().optional(),
});
export type IceParameters = z.infer<typeof IceParameters>;

export const IceCandidate = z.object({
	foundation: shortString,
	priority: z.number(),
	address: shortString,
	ip: shortString.optional(),
	protocol: z.enum(["udp", "tcp"]),
	port: z.number().int(),
	type: z.enum(["host", "srflx", "prflx", "relay"]),
	tcpType: z.enum(["active", "passive", "so"]).optional(),
});
export type IceCandidate = z.infer<typeof IceCandidate>;

export const DtlsParameters = z.object({
	role: z.enum(["auto", "client", "server"]).optional(),
	fingerprints: z
		.array(z.object({ algorithm: z.enum(["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]), value: shortString }))
		.min(1)
		.max(8),
});
export type DtlsParameters = z.infer<typeof DtlsParameters>;

export const SctpCapabilities = z.object({
	numStreams: z.object({ OS: z.number().int().min(1).max(65535), MIS: z.number().int().min(1).max(65535) }),
});
export const SctpParameters = z.object({
	port: z.number().int(),
	OS: z.number().int(),
	MIS: z.number().int(),
	maxMessageSize: z.number().int(),
});

// --- domain values -----------------------------------------------------------

export const MediaKind = z.enum(["audio", "video"]);
export type MediaKind = z.infer<typeof MediaKind>;
/** What a producer carries; `screen` needs the `screen` permission, the others `publish`. */
export const MediaSource = z.enum(["mic", "camera", "screen"]);
export type MediaSource = z.infer<typeof MediaSource>;
export const TransportDirection = z.enum(["send", "recv"]);
export type TransportDirection = z.infer<typeof TransportDirection>;

const EntityId = z.string().min(1).max(128);
const DisplayName = z.string().trim().min(1).max(100);

export const ProducerInfo = z.object({
	id: EntityId,
	kind: MediaKind,
	source: MediaSource,
	paused: z.boolean(),
});
export type ProducerInfo = z.infer<typeof ProducerInfo>;

export const PeerInfo = z.object({
	/** The participant's user id (one peer per user per call). */
	id: EntityId,
	deviceId: EntityId.optional(),
	displayName: z.string().max(100),
	/** False while the peer's socket is gone and its reconnect grace runs. */
	connected: z.boolean(),
	producers: z.array(ProducerInfo),
});
export type PeerInfo = z.infer<typeof PeerInfo>;

export const CallEndReason = z.enum(["ended", "node-shutdown", "media-failure"]);
export type CallEndReason = z.infer<typeof CallEndReason>;

const Empty = z.object({});
const TransportRef = z.object({ transportId: EntityId });
const ProducerRef = z.object({ producerId: EntityId });
const ConsumerRef = z.object({ consumerId: EntityId });

// --- requests ----------------------------------------------------------------

/** Every request: method → schema of `data` in the request and in the ok response. */
export const RTC_REQUESTS = {
	/** The router's RTP capabilities, for `device.load()`. Allowed before `join`. */
	getRouterRtpCapabilities: {
		request: Empty,
		response: z.object({ rtpCapabilities: RtpCapabilities }),
	},
	/**
	 * Enter the call. `rtpCapabilities` are the device's (`device.rtpCapabilities`).
	 * After a reconnect within the grace period, `resumed` is true and the
	 * transports and producers kept from the previous socket are listed
	 * (close the ones the client no longer has with `closeTransport`).
	 */
	join: {
		request: z.object({ rtpCapabilities: RtpCapabilities, displayName: DisplayName.optional() }),
		response: z.object({
			peerId: EntityId,
			peers: z.array(PeerInfo),
			resumed: z.boolean(),
			transports: z.array(z.object({ id: EntityId, direction: TransportDirection })),
			producers: z.array(ProducerInfo),
		}),
	},
	/** Leave the call; the node then closes the socket with 1000. */
	leave: { request: Empty, response: Empty },
	/**
	 * A WebRTC transport on the node's WebRtcServer. `send` needs `publish` or
	 * `screen`, `recv` needs `subscribe`. Once a `recv` transport exists, the
	 * node creates (paused) consumers for every other peer's producers on it
	 * and announces each with `newConsumer`.
	 */
	createWebRtcTransport: {
		request: z.object({ direction: TransportDirection, sctpCapabilities: SctpCapabilities.optional() }),
		response: z.object({
			id: EntityId,
			iceParameters: IceParameters,
			iceCandidates: z.array(IceCandidate),
			dtlsParameters: DtlsParameters,
			sctpParameters: SctpParameters.optional(),
		}),
	},
	connectWebRtcTransport: {
		request: z.object({ transportId: EntityId, dtlsParameters: DtlsParameters }),
		response: Empty,
	},
	restartIce: { request: TransportRef, response: z.object({ iceParameters: IceParameters }) },
	closeTransport: { request: TransportRef, response: Empty },
	/** Start sending a track. mic → audio, camera → video, screen → video or audio. */
	produce: {
		request: z.object({
			transportId: EntityId,
			kind: MediaKind,
			rtpParameters: RtpParameters,
			appData: z.object({ source: MediaSource }),
			paused: z.boolean().optional(),
		}),
		response: z.object({ id: EntityId }),
	},
	closeProducer: { request: ProducerRef, response: Empty },
	/** Mute; other peers get `producerPaused` (and `consumerPaused` for their consumers). */
	pauseProducer: { request: ProducerRef, response: Empty },
	resumeProducer: { request: ProducerRef, response: Empty },
	pauseConsumer: { request: ConsumerRef, response: Empty },
	/** Consumers start paused: resume after `recvTransport.consume()` has returned. */
	resumeConsumer: { request: ConsumerRef, response: Empty },
	/** Simulcast/SVC layer wish of a video consumer. */
	setConsumerPreferredLayers: {
		request: z.object({
			consumerId: EntityId,
			spatialLayer: z.number().int().min(0).max(15),
			temporalLayer: z.number().int().min(0).max(15).optional(),
		}),
		response: Empty,
	},
	requestConsumerKeyFrame: { request: ConsumerRef, response: Empty },
	/**
	 * The client's side of a transport reached ICE/connection state `failed`.
	 * `relay` says whether the client had TURN servers to use (its `iceServers`
	 * held a `turn:`/`turns:` URL), so relay failures can be told apart from
	 * STUN/host-only ones. The node counts it in
	 * `secureconnect_client_ice_failures_total{relay}`, once per transport until
	 * its next `restartIce`.
	 */
	reportIceFailure: { request: z.object({ transportId: EntityId, relay: z.boolean() }), response: Empty },
} as const satisfies Record<string, { request: z.ZodType; response: z.ZodType }>;

export type RtcMethod = keyof typeof RTC_REQUESTS;
export const RTC_METHODS = Object.keys(RTC_REQUESTS) as RtcMethod[];
export type RtcRequestData<M extends RtcMethod> = z.infer<(typeof RTC_REQUESTS)[M]["request"]>;
export type RtcResponseData<M extends RtcMethod> = z.infer<(typeof RTC_REQUESTS)[M]["response"]>;

// --- notifications -------------------------------------------------------------

export const RTC_NOTIFICATIONS = {
	/** Sent once the token is accepted; requests may be sent from then on. */
	ready: z.object({
		peerId: EntityId,
		callId: EntityId,
		nodeId: z.string(),
		permissions: z.array(CallPermission),
	}),
	peerJoined: z.object({ peer: PeerInfo }),
	peerLeft: z.object({ peerId: EntityId }),
	/** A paused consumer for a producer of `peerId`: `recvTransport.consume()` it, then `resumeConsumer`. */
	newConsumer: z.object({
		id: EntityId,
		peerId: EntityId,
		producerId: EntityId,
		kind: MediaKind,
		rtpParameters: RtpParameters,
		type: z.enum(["simple", "simulcast", "svc", "pipe"]),
		appData: z.object({ source: MediaSource }),
		producerPaused: z.boolean(),
	}),
	consumerClosed: z.object({ consumerId: EntityId }),
	/** The consumer's producer was paused (muted) or resumed. */
	consumerPaused: z.object({ consumerId: EntityId }),
	consumerResumed: z.object({ consumerId: EntityId }),
	consumerLayersChanged: z.object({
		consumerId: EntityId,
		spatialLayer: z.number().int().nullable(),
		temporalLayer: z.number().int().nullable(),
	}),
	/** Another peer muted or unmuted one of its producers. */
	producerPaused: z.object({ peerId: EntityId, producerId: EntityId, source: MediaSource }),
	producerResumed: z.object({ peerId: EntityId, producerId: EntityId, source: MediaSource }),
	/** The dominant speaker changed (null when nobody speaks any more). */
	activeSpeaker: z.object({ peerId: EntityId.nullable(), producerId: EntityId.nullable() }),
	/** The call is over on this node; the socket closes next. */
	callEnded: z.object({ reason: CallEndReason }),
	/** The node is shutting down: move to another node (ask the api to join again) before `deadline`. */
	nodeDraining: z.object({ deadline: z.iso.datetime(), timeoutMs: z.number().int().nonnegative() }),
} as const satisfies Record<string, z.ZodType>;

export type RtcNotificationMethod = keyof typeof RTC_NOTIFICATIONS;
export type RtcNotificationData<M extends RtcNotificationMethod> = z.infer<(typeof RTC_NOTIFICATIONS)[M]>;

// --- frames --------------------------------------------------------------------

export const RtcAuthFrame = z.object({ type: z.literal("auth"), token: z.string().min(10).max(4096) });

export const RtcRequestFrame = z.object({
	type: z.literal("request"),
	id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
	method: z.string().min(1).max(64),
	data: z.unknown().optional(),
});

export const RtcClientFrame = z.discriminatedUnion("type", [RtcAuthFrame, RtcRequestFrame]);
export type RtcClientFrame = z.infer<typeof RtcClientFrame>;

export const RtcResponseFrame = z.discriminatedUnion("ok", [
	z.object({ type: z.literal("response"), id: z.number().int(), ok: z.literal(true), data: z.unknown() }),
	z.object({
		type: z.literal("response"),
		id: z.number().int(),
		ok: z.literal(false),
		error: z.object({ code: RtcErrorCode, message: z.string() }),
	}),
]);
export type RtcResponseFrame = z.infer<typeof RtcResponseFrame>;

export const RtcNotificationFrame = z.object({
	type: z.literal("notification"),
	method: z.enum(Object.keys(RTC_NOTIFICATIONS) as [RtcNotificationMethod, ...RtcNotificationMethod[]]),
	data: z.unknown(),
});
export type RtcNotificationFrame = z.infer<typeof RtcNotificationFrame>;

/** Sent before the node closes a socket it refuses (bad token, call full, draining…). */
export const RtcErrorFrame = z.object({ type: z.literal("error"), code: RtcErrorCode, message: z.string() });
export type RtcErrorFrame = z.infer<typeof RtcErrorFrame>;

export const RtcServerFrame = z.union([RtcResponseFrame, RtcNotificationFrame, RtcErrorFrame]);
export type RtcServerFrame = z.infer<typeof RtcServerFrame>;

/** Typed notification frame for a method (what the node sends). */
export type RtcNotification<M extends RtcNotificationMethod = RtcNotificationMethod> = {
	[K in M]: { type: "notification"; method: K; data: RtcNotificationData<K> };
}[M];

export function isRtcMethod(method: string): method is RtcMethod {
	return Object.hasOwn(RTC_REQUESTS, method);
}
