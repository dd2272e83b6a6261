import { z } from "zod";
import { ConversationId } from "./conversations.ts";
import { UserId } from "./ids.ts";

export const CallMedia = z.enum(["audio", "video"]);
export const CallState = z.enum(["ringing", "active", "ended", "missed", "declined"]);
export const ParticipantState = z.enum(["ringing", "joined", "left", "declined", "busy", "missed"]);

export const IceServer = z.object({
	urls: z.union([z.string(), z.array(z.string())]),
	username: z.string().optional(),
	credential: z.string().optional(),
});
export type IceServer = z.infer<typeof IceServer>;

/**
 * Whether `iceServers` carries TURN relays: "ok" when it does; "not_configured" when the
 * api has no TURN_URLS/TURN_SECRET; "unavailable" when TURN is configured but the media
 * nodes' probes find every TURN server down (no TURN entries then). Without TURN, clients
 * rely on STUN/host candidates.
 */
export const TurnStatus = z.enum(["ok", "not_configured", "unavailable"]);
export type TurnStatus = z.infer<typeof TurnStatus>;

export const TurnCredentials = z
	.object({
		iceServers: z.array(IceServer),
		ttl: z.number().int(),
		turn: TurnStatus,
	})
	.meta({ id: "TurnCredentials" });

export const CallParticipant = z.object({ userId: UserId, state: ParticipantState }).meta({ id: "CallParticipant" });

export const Call = z
	.object({
		id: z.string(),
		conversationId: ConversationId,
		media: CallMedia,
		state: CallState,
		initiatorId: UserId.nullable(),
		participants: z.array(CallParticipant),
		createdAt: z.iso.datetime(),
		endedAt: z.iso.datetime().nullable(),
	})
	.meta({ id: "Call" });
export type Call = z.infer<typeof Call>;

export const JoinInfo = z
	.object({
		/** The media node's WebSocket; authenticate with `bearer.<token>` or a first auth frame. */
		url: z.string(),
		token: z.string(),
		iceServers: z.array(IceServer),
		turn: TurnStatus,
	})
	.meta({ id: "JoinInfo" });

export const StartCallRequest = z.object({ conversationId: ConversationId, media: CallMedia });

/** The reasons a TURN probe gives for a failed allocation (metric label values). */
export const TURN_PROBE_FAILURE_REASONS = [
	"timeout",
	"refused",
	"unreachable",
	"dns",
	"tls",
	"unauthorized",
	"quota",
	"capacity",
	"rejected",
	"bad_response",
] as const;

/** A media node's latest TURN Allocate probe of each TURN URL it is configured with. */
export const NodeTurnReport = z.object({
	servers: z
		.array(
			z.object({
				url: z.string().max(512),
				/** The last Allocate succeeded (401 challenge, authenticated Allocate, Refresh 0). */
				up: z.boolean(),
				/** Why it failed (one of TURN_PROBE_FAILURE_REASONS); absent when up. */
				reason: z.string().max(64).optional(),
				checkedAt: z.iso.datetime(),
			}),
		)
		.max(32),
});
export type NodeTurnReport = z.infer<typeof NodeTurnReport>;

/** Signed media node → api heartbeat. */
export const NodeHeartbeat = z.object({
	nodeId: z.string().min(1).max(64),
	url: z.string().url().max(512),
	region: z.string().max(64),
	capacity: z.number().int().min(0),
	load: z.object({ calls: z.number().int().min(0), peers: z.number().int().min(0) }).loose(),
	draining: z.boolean(),
	/** Absent when the node probes no TURN server (older nodes, or TURN_URLS/TURN_SECRET unset on it). */
	turn: NodeTurnReport.optional(),
});
export type NodeHeartbeat = z.infer<typeof NodeHeartbeat>;

export const NodeEvents = z.object({
	nodeId: z.string().min(1).max(64),
	events: z
		.array(
			z.object({
				/** Stable across retries of the same event. */
				id: z.string().max(128).optional(),
				type: z.enum(["call.started", "call.ended", "participant.joined", "participant.left"]),
				callId: z.string().max(64),
				userId: z.string().max(64).optional(),
				at: z.union([z.string(), z.number()]).optional(),
			}),
		)
		.max(500),
});
