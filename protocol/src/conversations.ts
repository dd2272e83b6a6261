import { z } from "zod";
import { DeviceId, UserId } from "./ids.ts";
import { WelcomeEnvelope } from "./keys.ts";

export const ConversationId = z
	.string()
	.regex(/^cnv_[a-z2-7]{10,40}$/)
	.brand<"ConversationId">();
export type ConversationId = z.infer<typeof ConversationId>;

export const DEFAULT_MAX_CIPHERTEXT_BYTES = 64 * 1024;
export const DEFAULT_MAX_MEMBERS = 1000;
export const HISTORY_PAGE_MAX = 200;

export const MemberRole = z.enum(["owner", "admin", "member"]);
export type MemberRole = z.infer<typeof MemberRole>;

export const Member = z.object({ userId: UserId, role: MemberRole }).meta({ id: "Member" });
export type Member = z.infer<typeof Member>;

export const ConversationType = z.enum(["direct", "group"]);

export const Conversation = z
	.object({
		id: ConversationId,
		type: ConversationType,
		title: z.string().nullable(),
		members: z.array(Member),
		createdAt: z.iso.datetime(),
		/** Seconds after which messages disappear; null keeps them. */
		retentionSeconds: z.number().int().nullable(),
	})
	.meta({ id: "Conversation" });
export type Conversation = z.infer<typeof Conversation>;

export const ConversationSummary = Conversation.extend({
	lastSeq: z.number().int(),
	unread: z.number().int(),
}).meta({ id: "ConversationSummary" });
export type ConversationSummary = z.infer<typeof ConversationSummary>;

export const Title = z.string().trim().min(1).max(128);

export const CreateConversationRequest = z
	.object({
		type: ConversationType,
		memberIds: z.array(UserId).min(1).max(DEFAULT_MAX_MEMBERS),
		title: Title.optional(),
	})
	.meta({ id: "CreateConversationRequest" });

export const UpdateConversationRequest = z
	.object({
		title: Title.optional(),
		retentionSeconds: z
			.number()
			.int()
			.min(60)
			.max(365 * 86_400)
			.nullable()
			.optional(),
	})
	.refine((v) => v.title !== undefined || v.retentionSeconds !== undefined, "nothing to update");

export const AddMembersRequest = z
	.object({
		userIds: z.array(UserId).min(1).max(100).optional(),
		userId: UserId.optional(),
		role: z.enum(["admin", "member"]).optional(),
	})
	.refine((v) => v.userIds !== undefined || v.userId !== undefined, "give userId or userIds");

/** Base64 of opaque bytes; the server checks only its size. */
export const Ciphertext = z
	.string()
	.min(1)
	.regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");
export const ClientId = z
	.string()
	.min(1)
	.max(64)
	.regex(/^[A-Za-z0-9._:-]+$/, "letters, digits and . _ : - only");

export const MessageKind = z.enum(["message", "edit", "delete"]);

export const Message = z
	.object({
		seq: z.number().int().positive(),
		id: z.string(),
		senderId: UserId,
		senderDeviceId: DeviceId.nullable(),
		clientId: ClientId,
		/** Empty for a deleted message (a tombstone) and for delete events. */
		ciphertext: z.string(),
		sentAt: z.iso.datetime(),
		kind: MessageKind,
		/** For edit and delete events: the seq of the message they change. */
		refSeq: z.number().int().positive().nullable(),
		deleted: z.boolean(),
		editedAt: z.iso.datetime().nullable(),
	})
	.meta({ id: "Message" });
export type Message = z.infer<typeof Message>;

export const SendMessageRequest = z
	.object({
		clientId: ClientId,
		ciphertext: Ciphertext,
		senderDeviceId: DeviceId.optional(),
		welcome: WelcomeEnvelope.optional(),
	})
	.meta({ id: "SendMessageRequest" });

export const HistoryQuery = z.object({
	after: z.coerce.number().int().min(0).default(0),
	limit: z.coerce.number().int().min(1).max(HISTORY_PAGE_MAX).default(50),
});

export const HistoryPage = z.object({ messages: z.array(Message), hasMore: z.boolean() }).meta({ id: "HistoryPage" });
export type HistoryPage = z.infer<typeof HistoryPage>;

export const ReadRequest = z.object({ seq: z.number().int().min(0) });
