// The system of record in Postgres. Constraints live here, in the database,
// not only in code: case-insensitive uniqueness, foreign keys, checks.
import { sql } from "drizzle-orm";
import { boolean, check, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

export const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

export const users = pgTable(
	"users",
	{
		id: text("id").primaryKey(),
		email: text("email").notNull(),
		handle: text("handle").notNull(),
		displayName: text("display_name").notNull(),
		passwordHash: text("password_hash").notNull(),
		emailVerifiedAt: timestamp("email_verified_at", { withTimezone: true, mode: "date" }),
		createdAt: createdAt(),
		updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [
		uniqueIndex("users_email_lower_key").on(sql`lower(${t.email})`),
		uniqueIndex("users_handle_lower_key").on(sql`lower(${t.handle})`),
	],
);

export const sessions = pgTable(
	"sessions",
	{
		id: text("id").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		deviceName: text("device_name").notNull(),
		createdAt: createdAt(),
		lastSeenAt: timestamp("last_seen_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
		revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
		revokedReason: text("revoked_reason"),
	},
	(t) => [index("sessions_user_idx").on(t.userId)],
);

/** Every refresh token ever issued, by hash; a rotated one presented again means theft. */
export const refreshTokens = pgTable(
	"refresh_tokens",
	{
		tokenHash: text("token_hash").primaryKey(),
		sessionId: text("session_id")
			.notNull()
			.references(() => sessions.id, { onDelete: "cascade" }),
		createdAt: createdAt(),
		expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
		rotatedAt: timestamp("rotated_at", { withTimezone: true, mode: "date" }),
	},
	(t) => [index("refresh_tokens_session_idx").on(t.sessionId)],
);

export const emailTokens = pgTable(
	"email_tokens",
	{
		tokenHash: text("token_hash").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		purpose: text("purpose", { enum: ["verify_email", "reset_password"] }).notNull(),
		createdAt: createdAt(),
		expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
		usedAt: timestamp("used_at", { withTimezone: true, mode: "date" }),
	},
	(t) => [index("email_tokens_user_idx").on(t.userId, t.purpose)],
);

export const devices = pgTable(
	"devices",
	{
		id: text("id").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		name: text("name").notNull(),
		credential: text("credential").notNull(),
		/** The session that registered the device; removing the device ends it. */
		sessionId: text("session_id").references(() => sessions.id, { onDelete: "set null" }),
		createdAt: createdAt(),
		lastSeenAt: timestamp("last_seen_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [uniqueIndex("devices_credential_key").on(t.credential), index("devices_user_idx").on(t.userId)],
);

export const friendRequests = pgTable(
	"friend_requests",
	{
		id: text("id").primaryKey(),
		fromUserId: text("from_user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		toUserId: text("to_user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		createdAt: createdAt(),
	},
	(t) => [
		uniqueIndex("friend_requests_pair_key").on(t.fromUserId, t.toUserId),
		index("friend_requests_to_idx").on(t.toUserId),
		check("friend_requests_not_self", sql`${t.fromUserId} <> ${t.toUserId}`),
	],
);

/** One row per friendship, stored with userA < userB so a pair exists once. */
export const friendships = pgTable(
	"friendships",
	{
		userA: text("user_a")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		userB: text("user_b")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		createdAt: createdAt(),
	},
	(t) => [
		primaryKey({ columns: [t.userA, t.userB] }),
		index("friendships_b_idx").on(t.userB),
		check("friendships_ordered", sql`${t.userA} < ${t.userB}`),
	],
);

export const blocks = pgTable(
	"blocks",
	{
		blockerId: text("blocker_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		blockedId: text("blocked_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		createdAt: createdAt(),
	},
	(t) => [
		primaryKey({ columns: [t.blockerId, t.blockedId] }),
		index("blocks_blocked_idx").on(t.blockedId),
		check("blocks_not_self", sql`${t.blockerId} <> ${t.blockedId}`),
	],
);

/** Emails waiting for the notification consumer; in dev also the mailbox. */
export const outboundEmails = pgTable(
	"outbound_emails",
	{
		id: text("id").primaryKey(),
		toEmail: text("to_email").notNull(),
		template: text("template").notNull(),
		subject: text("subject").notNull(),
		textBody: text("text_body").notNull(),
		htmlBody: text("html_body").notNull(),
		requestId: text("request_id"),
		createdAt: createdAt(),
		sentAt: timestamp("sent_at", { withTimezone: true, mode: "date" }),
		attempts: integer("attempts").notNull().default(0),
		failed: boolean("failed").notNull().default(false),
	},
	(t) => [index("outbound_emails_to_idx").on(sql`lower(${t.toEmail})`)],
);
