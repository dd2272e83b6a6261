// Push subscriptions and the push payload. A push says where to look, never
// what a message says: the device fetches and decrypts the message itself.
import { z } from "zod";
import { ConversationId } from "./conversations.ts";
import { DeviceId } from "./ids.ts";

export const PushSubscriptionId = z
	.string()
	.regex(/^psb_[a-z2-7]{10,40}$/)
	.brand<"PushSubscriptionId">();
export type PushSubscriptionId = z.infer<typeof PushSubscriptionId>;

export const PUSH_KINDS = ["fcm", "apns", "webpush"] as const;
export const PushKind = z.enum(PUSH_KINDS);
export type PushKind = z.infer<typeof PushKind>;

const base64url = (bytes: number) =>
	z
		.string()
		.regex(/^[A-Za-z0-9_-]+={0,2}$/, "must be base64url")
		.refine((s) => Math.floor((s.replace(/=+$/, "").length * 3) / 4) === bytes, `must encode ${bytes} bytes`);

/** The browser's PushSubscription.toJSON(): the push service URL and the client's keys (RFC 8291). */
export const WebPushSubscription = z
	.object({
		endpoint: z.url({ protocol: /^https?$/ }).max(2048),
		expirationTime: z.number().nullable().optional(),
		keys: z.object({
			/** The client's P-256 ECDH public key, uncompressed point (65 bytes), base64url. */
			p256dh: base64url(65),
			/** The 16-byte authentication secret, base64url. */
			auth: base64url(16),
		}),
	})
	.meta({ id: "WebPushSubscription" });
export type WebPushSubscription = z.infer<typeof WebPushSubscription>;

/** An FCM registration token. */
const FcmToken = z
	.string()
	.min(16)
	.max(4096)
	.regex(/^[\x21-\x7e]+$/, "must be printable ASCII");
/** An APNs device token: hex. */
const ApnsToken = z.string().regex(/^[0-9a-fA-F]{64,200}$/, "must be the hex device token");

export const CreatePushSubscriptionRequest = z
	.discriminatedUnion("kind", [
		z.object({ kind: z.literal("fcm"), token: FcmToken, deviceId: DeviceId }),
		z.object({ kind: z.literal("apns"), token: ApnsToken, deviceId: DeviceId }),
		z.object({ kind: z.literal("webpush"), subscription: WebPushSubscription, deviceId: DeviceId }),
	])
	.meta({ id: "CreatePushSubscriptionRequest" });
export type CreatePushSubscriptionRequest = z.infer<typeof CreatePushSubscriptionRequest>;

export const PushSubscription = z
	.object({
		id: PushSubscriptionId,
		kind: PushKind,
		deviceId: DeviceId,
		createdAt: z.iso.datetime(),
		lastSuccessAt: z.iso.datetime().nullable(),
		/** Failed deliveries since the last success. */
		failureCount: z.number().int().min(0),
	})
	.meta({ id: "PushSubscription" });
export type PushSubscription = z.infer<typeof PushSubscription>;

export const PushSubscriptionList = z.object({ subscriptions: z.array(PushSubscription) });

/** Which push services this server delivers through, and the VAPID key a browser subscribes with. */
export const PushProviders = z
	.object({
		fcm: z.boolean(),
		apns: z.boolean(),
		webpush: z.object({ vapidPublicKey: z.string() }).nullable(),
	})
	.meta({ id: "PushProviders" });

/** Everything a push carries (FCM data, APNs custom keys, the decrypted Web Push body). */
export const PushPayload = z
	.object({
		kind: z.enum(["message", "call"]),
		conversationId: ConversationId,
		seq: z.number().int().min(0).optional(),
		callId: z.string().max(64).optional(),
	})
	.strict()
	.meta({ id: "PushPayload" });
export type PushPayload = z.infer<typeof PushPayload>;
