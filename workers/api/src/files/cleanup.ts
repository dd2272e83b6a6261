// Deleting files: one by the owner, all of an account, all of a conversation,
// and the scheduled sweep of unfinished uploads past their expiry. R2 goes
// first where a failure must leave everything as it was; quota is released
// by the row disappearing (usage is a sum over rows).
import { and, eq, inArray, lt, type SQL } from "drizzle-orm";
import { loadConfig } from "../config/config.ts";
import { type Database, openDatabase } from "../db/client.ts";
import { files } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { type Logger, rootLogger } from "../lib/logger.ts";
import type { FileRow } from "./model.ts";
import { deleteRows } from "./quota.ts";
import { abortMultipart, deleteObjects, listKeys, userPrefix } from "./storage.ts";

/** Rows handled per sweep batch; the sweep runs batches until none are left (or the cap). */
const SWEEP_BATCH = 100;
const SWEEP_MAX_BATCHES = 20;

/**
 * Removes the R2 side of files: aborts unfinished multipart uploads and
 * deletes the objects. Throws 503 if the objects could not be deleted.
 */
async function removeObjects(env: Env, rows: FileRow[], log: Logger): Promise<void> {
	await Promise.all(
		rows
			.filter((r) => r.state === "pending" && r.uploadId !== null)
			.map((r) =>
				// R2 also drops abandoned multipart uploads on its own after 7 days.
				abortMultipart(env, r.r2Key, r.uploadId as string).catch((error: unknown) =>
					log.warn("multipart abort failed", { fileId: r.id, error }),
				),
			),
	);
	await deleteObjects(
		env,
		rows.map((r) => r.r2Key),
	);
}

/** DELETE /v1/files/{id}: the object, then the row (which releases the quota). */
export async function deleteFile(db: Database, env: Env, row: FileRow, log: Logger): Promise<void> {
	await removeObjects(env, [row], log);
	await deleteRows(db, eq(files.id, row.id));
}

/**
 * Before an account is deleted: every object it owns, including any the
 * database no longer knows about. The rows go with the user (ON DELETE CASCADE).
 * Throws 503 when storage cannot be reached, so the account is not deleted with
 * its files left behind.
 */
export async function deleteUserFiles(db: Database, env: Env, userId: string, log: Logger): Promise<number> {
	const rows = await db.select().from(files).where(eq(files.ownerId, userId));
	await removeObjects(env, rows, log);
	const leftovers = await listKeys(env, userPrefix(userId));
	await deleteObjects(env, leftovers);
	return rows.length;
}

/**
 * Before a conversation is deleted: the files attached to it. Best effort on
 * the storage side (the conversation goes regardless; its rows cascade), so a
 * storage outage never blocks leaving a conversation.
 */
export async function deleteConversationFiles(
	db: Database,
	env: Env,
	conversationId: string,
	log: Logger,
): Promise<number> {
	const rows = await db.select().from(files).where(eq(files.conversationId, conversationId));
	if (rows.length === 0) return 0;
	try {
		await removeObjects(env, rows, log);
	} catch (error) {
		log.error("could not delete a conversation's files from storage", { conversationId, count: rows.length, error });
	}
	await deleteRows(
		db,
		inArray(
			files.id,
			rows.map((r) => r.id),
		),
	);
	return rows.length;
}

/**
 * Aborts unfinished uploads past their expiry and releases their reservation.
 * A file whose storage cleanup fails keeps its row (and reservation) for the
 * next sweep, so nothing is ever left in R2 unaccounted for.
 */
export async function expireUploads(env: Env, now: Date = new Date()): Promise<number> {
	const config = await loadConfig(env);
	const handle = openDatabase({ ...config.database, onError: () => {} });
	const log = rootLogger.child({ job: "expire-uploads" });
	let expired = 0;
	try {
		for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
			const rows = await handle.db
				.select()
				.from(files)
				.where(and(eq(files.state, "pending"), lt(files.expiresAt, now)))
				.limit(SWEEP_BATCH);
			const cleaned: string[] = [];
			for (const row of rows) {
				try {
					await removeObjects(env, [row], log);
					cleaned.push(row.id);
				} catch (error) {
					log.warn("expired upload: storage cleanup failed; retrying next sweep", { fileId: row.id, error });
				}
			}
			if (cleaned.length > 0) {
				const gone = await deleteRows(handle.db, and(inArray(files.id, cleaned), eq(files.state, "pending")) as SQL);
				expired += gone.length;
			}
			if (rows.length < SWEEP_BATCH || cleaned.length === 0) break;
		}
		return expired;
	} finally {
		await handle.close();
	}
}

/** For the Worker's scheduled handler: never throws, logs what it did. */
export async function sweepExpiredUploads(env: Env): Promise<void> {
	try {
		const count = await expireUploads(env);
		if (count > 0) rootLogger.info("expired uploads aborted", { count });
	} catch (error) {
		rootLogger.error("expired upload sweep failed", { error });
	}
}
