// Storage quota. Usage is the sum over the user's file rows (complete = used,
// pending = reserved). A create locks the user's storage_quotas row, so
// parallel creates are checked one after another and can never exceed it.
import type { StorageUsage } from "@secureconnect/protocol";
import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { files, storageQuotas } from "../db/schema/index.ts";
import { ApiError } from "../lib/api-error.ts";
import type { FileLimits } from "./limits.ts";
import type { FileRow } from "./model.ts";

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];
type Executor = Database | Tx;

interface Sums {
	usedBytes: number;
	reservedBytes: number;
	pendingUploads: number;
}

async function sums(db: Executor, userId: string): Promise<Sums> {
	const [row] = await db
		.select({
			used: sql<string>`coalesce(sum(${files.size}) filter (where ${files.state} = 'complete'), 0)`,
			reserved: sql<string>`coalesce(sum(${files.size}) filter (where ${files.state} = 'pending'), 0)`,
			pending: sql<string>`count(*) filter (where ${files.state} = 'pending')`,
		})
		.from(files)
		.where(eq(files.ownerId, userId));
	return {
		usedBytes: Number(row?.used ?? 0),
		reservedBytes: Number(row?.reserved ?? 0),
		pendingUploads: Number(row?.pending ?? 0),
	};
}

async function quotaOf(db: Executor, userId: string, limits: FileLimits, lock: boolean): Promise<number> {
	const query = db
		.select({ quotaBytes: storageQuotas.quotaBytes })
		.from(storageQuotas)
		.where(eq(storageQuotas.userId, userId));
	const [row] = lock ? await query.for("update") : await query;
	return row?.quotaBytes ?? limits.storageQuotaBytes;
}

export async function storageUsage(db: Database, userId: string, limits: FileLimits): Promise<StorageUsage> {
	const [quotaBytes, usage] = await Promise.all([quotaOf(db, userId, limits, false), sums(db, userId)]);
	return { ...usage, quotaBytes };
}

/** Sets (or, with null, clears) a user's quota override. */
export async function setQuotaOverride(db: Database, userId: string, quotaBytes: number | null): Promise<void> {
	await db
		.insert(storageQuotas)
		.values({ userId, quotaBytes })
		.onConflictDoUpdate({ target: storageQuotas.userId, set: { quotaBytes } });
}

/**
 * Inserts the pending file row, reserving its size, if the user's quota and
 * pending-upload limit allow it; otherwise 413 QUOTA_EXCEEDED or 429
 * TOO_MANY_PENDING_UPLOADS and nothing is written.
 */
export async function reserveAndInsert(
	db: Database,
	limits: FileLimits,
	values: typeof files.$inferInsert & { ownerId: string; size: number },
): Promise<FileRow> {
	return db.transaction(async (tx) => {
		await tx.insert(storageQuotas).values({ userId: values.ownerId }).onConflictDoNothing();
		const quotaBytes = await quotaOf(tx, values.ownerId, limits, true);
		const usage = await sums(tx, values.ownerId);
		if (usage.pendingUploads >= limits.maxPendingUploads) {
			throw new ApiError(
				429,
				"TOO_MANY_PENDING_UPLOADS",
				`At most ${limits.maxPendingUploads} uploads may be unfinished at once; complete or delete one first.`,
			);
		}
		if (usage.usedBytes + usage.reservedBytes + values.size > quotaBytes) {
			throw new ApiError(413, "QUOTA_EXCEEDED", "This file does not fit in your storage quota.", {
				details: { ...usage, quotaBytes, requestedBytes: values.size },
			});
		}
		const [row] = await tx.insert(files).values(values).returning();
		if (!row) throw new Error("insert returned no row");
		return row;
	});
}
