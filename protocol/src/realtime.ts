// WebSocket frames (JSON text) of the conversation socket and the user channel.
import { z } from "zod";
import { Ciphertext, ClientId, ConversationId, MemberRole, Message } from "./conversations.ts";
import { DeviceId, UserId } from "./ids.ts";
import { WelcomeEnvelope } from "./keys.ts";

export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";
/** Offer this beside `bearer.<token>` and the server selects it instead of echoing the token. */
export const APP_SUBPROTOCOL = "secureconnect.v1";

export const PresenceState = z.enum(["online", "away", "offline"]);
export type PresenceState = z.infer<typeof PresenceState>;

export const ClientFrame = z.discriminatedUnion("type", [
	z.object({ type: z.literal("auth"), token: z.string().min(10).max(4096) }),
	z.object({
		type: z.literal("send"),
		clientId: ClientId,
		ciphertext: Ciphertext,
		senderDeviceId: DeviceId.optional(),
		/** With a commit that adds members: the Welcome, routed to the listed devices. */
		welcome: WelcomeEnvelope.optional(),
	}),
	z.object({
		type: z.literal("edit"),
		clientId: ClientId,
		refSeq: z.number().int().positive(),
		ciphertext: Ciphertext,
	}),
	z.object({ type: z.literal("delete"), clientId: ClientId, refSeq: z.number().int().positive() }),
	z.object({ type: z.literal("resume"), afterSeq: z.number().int().min(0) }),
	z.object({ type: z.literal("read"), seq: z.number().int().min(0) }),
	z.object({ type: z.literal("typing"), on: z.boolean() }),
	z.object({ type: z.literal("presence"), state: z.enum(["online", "away"]) }),
	z.object({ type: z.literal("ping") }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;

export const SOCKET_ERROR_CODES = [
	"BAD_FRAME",
	"UNAUTHORIZED",
	"FORBIDDEN",
	"TOO_LARGE",
	"RATE_LIMITED",
	"NOT_FOUND",
	"CONFLICT",
	"SERVICE_UNAVAILABLE",
	"STALE_EPOCH",
] as const;

export const ServerFrame = z.discriminatedUnion("type", [
	z.object({ type: z.literal("ready"), userId: UserId, lastSeq: z.number().int() }),
	z.object({ type: z.literal("message"), message: Message }),
	z.object({ type: z.literal("ack"), clientId: ClientId, seq: z.number().int() }),
	z.object({ type: z.literal("receipt"), userId: UserId, seq: z.number().int() }),
	z.object({ type: z.literal("typing"), userId: UserId, on: z.boolean() }),
	z.object({
		type: z.literal("presence"),
		userId: UserId,
		state: PresenceState,
		lastSeenAt: z.iso.datetime().nullable(),
	}),
	z.object({ type: z.literal("resumed"), fromSeq: z.number().int(), toSeq: z.number().int() }),
	z.object({
		type: z.literal("error"),
		code: z.enum(SOCKET_ERROR_CODES),
		message: z.string(),
		clientId: ClientId.optional(),
	}),
	z.object({ type: z.literal("pong") }),
	// user channel
	z.object({
		type: z.literal("activity"),
		conversationId: ConversationId,
		lastSeq: z.number().int(),
		unread: z.number().int(),
	}),
	z.object({
		type: z.literal("membership"),
		conversationId: ConversationId,
		change: z.enum(["added", "removed", "role_changed", "updated"]),
		userId: UserId,
		role: MemberRole.optional(),
	}),
	z.object({
		type: z.literal("device"),
		change: z.enum(["added", "removed"]),
		userId: UserId,
		deviceId: DeviceId,
		conversationId: ConversationId.optional(),
	}),
	z.object({ type: z.literal("keys_low"), deviceId: DeviceId, count: z.number().int() }),
	z.object({
		type: z.literal("call"),
		/** `moved`: the call's media node died and the api placed the call on another one. */
		event: z.enum(["ring", "joined", "declined", "busy", "left", "ended", "missed", "moved"]),
		callId: z.string(),
		conversationId: ConversationId,
		userId: UserId,
		media: z.enum(["audio", "video"]).optional(),
		/** With `moved`: the node the call runs on now; POST /v1/calls/{id}/join answers its url and a token. */
		nodeId: z.string().max(64).optional(),
	}),
	z.object({
		type: z.literal("welcome"),
		conversationId: ConversationId,
		welcomeId: z.string(),
		deviceId: DeviceId,
	}),
	z.object({
		type: z.literal("friend"),
		change: z.enum(["request", "accepted", "declined", "removed"]),
		userId: UserId,
		requestId: z.string().optional(),
	}),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
