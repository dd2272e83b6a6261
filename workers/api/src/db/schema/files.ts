import { sql } from "drizzle-orm";
import { bigint, check, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { createdAt, users } from "./accounts.ts";
import { conversations } from "./conversations.ts";

/**
 * File metadata; the bytes live in R2 under `r2_key`. A pending row reserves
 * its `size` against the owner's quota (storage_quotas.reserved_bytes); a
 * complete one uses it (used_bytes). Rows are only ever removed through
 * workers/api/src/files/, which moves those counters in the same statement.
 */
export const files = pgTable(
	"files",
	{
		id: text("id").primaryKey(),
		ownerId: text("owner_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		conversationId: text("conversation_id").references(() => conversations.id, { onDelete: "cascade" }),
		/** Declared at create; what arrives must match it exactly. */
		size: bigint("size", { mode: "number" }).notNull(),
		contentType: text("content_type").notNull(),
		state: text("state", { enum: ["pending", "complete"] })
			.notNull()
			.default("pending"),
		r2Key: text("r2_key").notNull(),
		/** Set for multipart uploads: every part but the last has this size. Null for a single PUT. */
		partSize: bigint("part_size", { mode: "number" }),
		partCount: integer("part_count").notNull(),
		/** The R2 multipart upload, while pending. */
		uploadId: text("upload_id"),
		/** R2's etag of the stored object, once complete. */
		etag: text("etag"),
		createdAt: createdAt(),
		completedAt: timestamp("completed_at", { withTimezone: true, mode: "date" }),
		/** A pending upload not completed by then is aborted and its reservation released. */
		expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
	},
	(t) => [
		uniqueIndex("files_r2_key").on(t.r2Key),
		index("files_owner_idx").on(t.ownerId, t.state),
		index("files_conversation_idx").on(t.conversationId),
		index("files_pending_expiry_idx").on(t.expiresAt).where(sql`${t.state} = 'pending'`),
		check("files_size_nonnegative", sql`${t.size} >= 0`),
		check("files_part_size_positive", sql`${t.partSize} IS NULL OR ${t.partSize} > 0`),
		check("files_part_count_positive", sql`${t.partCount} > 0`),
	],
);

/** Parts of a pending multipart upload that have arrived (R2 cannot list them). */
export const fileParts = pgTable(
	"file_parts",
	{
		fileId: text("file_id")
			.notNull()
			.references(() => files.id, { onDelete: "cascade" }),
		partNumber: integer("part_number").notNull(),
		size: bigint("size", { mode: "number" }).notNull(),
		etag: text("etag").notNull(),
		uploadedAt: timestamp("uploaded_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [primaryKey({ columns: [t.fileId, t.partNumber] }), check("file_parts_number", sql`${t.partNumber} >= 1`)],
);

/**
 * Per-user storage accounting, changed only by single conditional statements
 * (workers/api/src/files/quota.ts), so parallel creates can never take more
 * than the quota: `used + reserved + size <= quota` is checked and reserved
 * atomically. `quota_bytes` is the per-user override (null: STORAGE_QUOTA_BYTES).
 */
export const storageQuotas = pgTable(
	"storage_quotas",
	{
		userId: text("user_id")
			.primaryKey()
			.references(() => users.id, { onDelete: "cascade" }),
		quotaBytes: bigint("quota_bytes", { mode: "number" }),
		/** Bytes of complete files. */
		usedBytes: bigint("used_bytes", { mode: "number" }).notNull().default(0),
		/** Bytes of unfinished uploads. */
		reservedBytes: bigint("reserved_bytes", { mode: "number" }).notNull().default(0),
		pendingUploads: integer("pending_uploads").notNull().default(0),
		createdAt: createdAt(),
	},
	(t) => [
		check("storage_quotas_nonnegative", sql`${t.quotaBytes} IS NULL OR ${t.quotaBytes} >= 0`),
		check(
			"storage_quotas_counters_nonnegative",
			sql`${t.usedBytes} >= 0 AND ${t.reservedBytes} >= 0 AND ${t.pendingUploads} >= 0`,
		),
	],
);
