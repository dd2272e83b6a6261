// Storage quota: per-user counters in storage_quotas, changed only by single
// statements that touch the file rows and the counters together. A create is
// one conditional UPDATE (used + reserved + size <= quota) feeding the INSERT,
// so parallel creates can never exceed the quota, on Postgres (row lock, WHERE
// re-checked) and on the embedded database alike. No multi-statement
// transactions: the embedded PGlite proxy cannot interleave them safely.
import type { StorageUsage } from "@secureconnect/protocol";
import { eq, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { files, storageQuotas } from "../db/schema/index.ts";
import { ApiError } from "../lib/api-error.ts";
import type { FileLimits } from "./limits.ts";
import type { FileRow } from "./model.ts";

export async function storageUsage(db: Database, userId: string, limits: FileLimits): Promise<StorageUsage> {
	const [row] = await db.select().from(storageQuotas).where(eq(storageQuotas.userId, userId));
	return {
		usedBytes: row?.usedBytes ?? 0,
		reservedBytes: row?.reservedBytes ?? 0,
		quotaBytes: row?.quotaBytes ?? limits.storageQuotaBytes,
		pendingUploads: row?.pendingUploads ?? 0,
	};
}

/** Sets (or, with null, clears) a user's quota override. Lowering it never deletes files; it only stops new ones. */
export async function setQuotaOverride(db: Database, userId: string, quotaBytes: number | null): Promise<void> {
	await db
		.insert(storageQuotas)
		.values({ userId, quotaBytes })
		.onConflictDoUpdate({ target: storageQuotas.userId, set: { quotaBytes } });
}

export interface NewFile {
	id: string;
	ownerId: string;
	conversationId: string | null;
	size: number;
	contentType: string;
	r2Key: string;
	partSize: number | null;
	partCount: number;
	expiresAt: Date;
}

/**
 * Reserves the file's size and inserts its pending row in one statement, if
 * the quota and the pending-upload limit allow; otherwise 413 QUOTA_EXCEEDED or
 * 429 TOO_MANY_PENDING_UPLOADS and nothing is written.
 */
export async function reserveAndInsert(db: Database, limits: FileLimits, file: NewFile): Promise<FileRow> {
	await db.insert(storageQuotas).values({ userId: file.ownerId }).onConflictDoNothing();
	const inserted = await db.execute<{ id: string }>(sql`
		WITH reserved AS (
			UPDATE storage_quotas
			SET reserved_bytes = reserved_bytes + ${file.size}, pending_uploads = pending_uploads + 1
			WHERE user_id = ${file.ownerId}
				AND pending_uploads < ${limits.maxPendingUploads}
				AND used_bytes + reserved_bytes + ${file.size} <= coalesce(quota_bytes, ${limits.storageQuotaBytes})
			RETURNING user_id
		)
		INSERT INTO files (id, owner_id, conversation_id, size, content_type, state, r2_key, part_size, part_count, expires_at)
		SELECT ${file.id}, user_id, ${file.conversationId}, ${file.size}, ${file.contentType}, 'pending', ${file.r2Key},
			${file.partSize}::bigint, ${file.partCount}, ${file.expiresAt.toISOString()}::timestamptz
		FROM reserved
		RETURNING id`);
	if (inserted.rows.length === 0) {
		const usage = await storageUsage(db, file.ownerId, limits);
		if (usage.pendingUploads >= limits.maxPendingUploads) {
			throw new ApiError(
				429,
				"TOO_MANY_PENDING_UPLOADS",
				`At most ${limits.maxPendingUploads} uploads may be unfinished at once; complete or delete one first.`,
			);
		}
		const { pendingUploads: _, ...details } = usage;
		throw new ApiError(413, "QUOTA_EXCEEDED", "This file does not fit in your storage quota.", {
			details: { ...details, requestedBytes: file.size },
		});
	}
	const [row] = await db.select().from(files).where(eq(files.id, file.id));
	if (!row) throw new Error("inserted file row vanished");
	return row;
}

/**
 * Marks a pending file complete and moves its bytes from reserved to used, in
 * one statement. Returns false if the row is no longer pending (deleted,
 * expired, or completed by a concurrent request).
 */
export async function commitUpload(db: Database, fileId: string, etag: string): Promise<boolean> {
	const done = await db.execute<{ id: string }>(sql`
		WITH done AS (
			UPDATE files SET state = 'complete', etag = ${etag}, completed_at = now(), upload_id = NULL
			WHERE id = ${fileId} AND state = 'pending'
			RETURNING id, owner_id, size
		), moved AS (
			UPDATE storage_quotas AS q
			SET reserved_bytes = greatest(0, q.reserved_bytes - done.size),
				used_bytes = q.used_bytes + done.size,
				pending_uploads = greatest(0, q.pending_uploads - 1)
			FROM done WHERE q.user_id = done.owner_id
		)
		SELECT id FROM done`);
	return done.rows.length > 0;
}

/**
 * Deletes the file rows matching `where` and gives their bytes back (used for
 * complete ones, reserved for pending ones), in one statement. Returns the
 * deleted ids.
 */
export async function deleteRows(db: Database, where: SQL): Promise<string[]> {
	const gone = await db.execute<{ id: string }>(sql`
		WITH gone AS (
			DELETE FROM files WHERE ${where}
			RETURNING id, owner_id, size, state
		), totals AS (
			SELECT owner_id,
				coalesce(sum(size) FILTER (WHERE state = 'complete'), 0) AS used,
				coalesce(sum(size) FILTER (WHERE state = 'pending'), 0) AS reserved,
				count(*) FILTER (WHERE state = 'pending') AS pending
			FROM gone GROUP BY owner_id
		), released AS (
			UPDATE storage_quotas AS q
			SET used_bytes = greatest(0, q.used_bytes - totals.used),
				reserved_bytes = greatest(0, q.reserved_bytes - totals.reserved),
				pending_uploads = greatest(0, q.pending_uploads - totals.pending)
			FROM totals WHERE q.user_id = totals.owner_id
		)
		SELECT id FROM gone`);
	return gone.rows.map((r) => r.id);
}
