// WebSocket frames (JSON text) of the conversation socket and the user channel.
import { z } from "zod";
import { PublicUser } from "./accounts.ts";
import { Ciphertext, ClientId, ConversationId, MemberRole, Message } from "./conversations.ts";
import { DeviceId, FriendRequestId, UserId } from "./ids.ts";
import { WelcomeEnvelope } from "./keys.ts";

export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";
/** Offer this beside `bearer.<token>` and the server selects it instead of echoing the token. */
export const APP_SUBPROTOCOL = "secureconnect.v1";
/**
 * Offer this (before `secureconnect.v1`) and the server may put several
 * frames for the socket into one `{type:"batch", frames}` when they are
 * ready at once (one group commit's acks and messages). A socket that did
 * not offer it gets every frame on its own, as before.
 */
export const BATCH_SUBPROTOCOL = "secureconnect.v1.batch";
/** Frames in one batch, either way. */
export const MAX_BATCH_FRAMES = 100;

export const PresenceState = z.enum(["online", "away", "offline"]);
export type PresenceState = z.infer<typeof PresenceState>;

const AuthFrame = z.object({ type: z.literal("auth"), token: z.string().min(10).max(4096) });

/** What a client may send inside a batch: everything but `auth` (and no nested batch). */
export const BatchableClientFrame = z.discriminatedUnion("type", [
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
export type BatchableClientFrame = z.infer<typeof BatchableClientFrame>;

/** Several frames handled in order as if sent one by one; one invalid frame refuses the whole batch. */
export const ClientBatchFrame = z.object({
	type: z.literal("batch"),
	frames: z.array(BatchableClientFrame).min(1).max(MAX_BATCH_FRAMES),
});

export const ClientFrame = z.discriminatedUnion("type", [AuthFrame, ClientBatchFrame, BatchableClientFrame]);
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

/**
 * A friendship changed, sent to both users' channels. `userId`/`user` are the
 * other side as the receiver sees it; `by` is who acted (a receiver's own
 * devices get their own actions too). `cancelled`: the sender withdrew a request.
 */
export const FriendFrame = z.object({
	type: z.literal("friend"),
	change: z.enum(["request", "accepted", "declined", "cancelled", "removed"]),
	userId: UserId,
	user: PublicUser,
	by: UserId,
	requestId: FriendRequestId.optional(),
	at: z.iso.datetime(),
});
export type FriendFrame = z.infer<typeof FriendFrame>;

/** Every server frame but `batch`, which carries them. */
export const SingleServerFrame = z.discriminatedUnion("type", [
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
	FriendFrame,
]);
export type SingleServerFrame = z.infer<typeof SingleServerFrame>;

/** Only to sockets that selected BATCH_SUBPROTOCOL: frames that were ready at once, in order. */
export const ServerBatchFrame = z.object({
	type: z.literal("batch"),
	frames: z.array(SingleServerFrame).min(1),
});

export const ServerFrame = z.discriminatedUnion("type", [SingleServerFrame, ServerBatchFrame]);
export type ServerFrame = z.infer<typeof ServerFrame>;
