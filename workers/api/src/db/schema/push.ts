// Notifications: where a user's devices receive pushes, which queue jobs were
// already delivered (so a redelivered job is not sent twice), and the jobs
// that could not be delivered at all.
import { sql } from "drizzle-orm";
import { check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { createdAt, devices, users } from "./accounts.ts";

export interface WebPushKeys {
	endpoint: string;
	keys: { p256dh: string; auth: string };
}

export const pushSubscriptions = pgTable(
	"push_subscriptions",
	{
		id: text("id").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		deviceId: text("device_id")
			.notNull()
			.references(() => devices.id, { onDelete: "cascade" }),
		kind: text("kind", { enum: ["fcm", "apns", "webpush"] }).notNull(),
		/** FCM registration token or APNs device token. */
		token: text("token"),
		/** Web Push: the browser's subscription (endpoint and keys). */
		subscription: jsonb("subscription").$type<WebPushKeys>(),
		/** The token, or the Web Push endpoint: one subscription per push address. */
		target: text("target").notNull(),
		createdAt: createdAt(),
		lastSuccessAt: timestamp("last_success_at", { withTimezone: true, mode: "date" }),
		failureCount: integer("failure_count").notNull().default(0),
		lastFailureAt: timestamp("last_failure_at", { withTimezone: true, mode: "date" }),
	},
	(t) => [
		uniqueIndex("push_subscriptions_target_key").on(t.kind, t.target),
		index("push_subscriptions_user_idx").on(t.userId),
		index("push_subscriptions_device_idx").on(t.deviceId),
		check(
			"push_subscriptions_shape",
			sql`(${t.kind} = 'webpush' AND ${t.subscription} IS NOT NULL AND ${t.token} IS NULL) OR (${t.kind} <> 'webpush' AND ${t.token} IS NOT NULL AND ${t.subscription} IS NULL)`,
		),
	],
);

/**
 * One row per (job, target): `sending` while a consumer holds it, `sent` or
 * `pruned` once done for good, `failed` when the next attempt may take it.
 * Targets are subscription ids, or `email` for an outbox email.
 */
export const notificationDeliveries = pgTable(
	"notification_deliveries",
	{
		jobId: text("job_id").notNull(),
		target: text("target").notNull(),
		status: text("status", { enum: ["sending", "sent", "pruned", "failed", "rejected"] }).notNull(),
		attempts: integer("attempts").notNull().default(1),
		lastError: text("last_error"),
		createdAt: createdAt(),
		updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [primaryKey({ columns: [t.jobId, t.target] }), index("notification_deliveries_updated_idx").on(t.updatedAt)],
);

/** Jobs that ran out of attempts (from the dead-letter queue) or that a provider refused for good. */
export const notificationDeadLetters = pgTable(
	"notification_dead_letters",
	{
		/** The queue message id. */
		messageId: text("message_id").primaryKey(),
		queue: text("queue").notNull(),
		jobKind: text("job_kind").notNull(),
		jobId: text("job_id"),
		job: jsonb("job").notNull(),
		attempts: integer("attempts").notNull(),
		reason: text("reason").notNull(),
		createdAt: createdAt(),
	},
	(t) => [index("notification_dead_letters_created_idx").on(t.createdAt)],
);
