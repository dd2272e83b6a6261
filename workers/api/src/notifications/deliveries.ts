// Idempotency for queue jobs: before sending job J to target T a consumer
// claims (J, T); a claim that is already `sent` (or otherwise final) means a
// redelivered message must not send again. A claim left `sending` by a
// consumer that died is taken over once it is CLAIM_STALE_SECONDS old.
import { and, eq, lt, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { notificationDeliveries } from "../db/schema/index.ts";

export const CLAIM_STALE_SECONDS = 120;
/** Delivery records older than this are swept: no queue redelivers that late. */
export const DELIVERY_RETENTION_DAYS = 14;

const STALE = sql.raw(`interval '${CLAIM_STALE_SECONDS} seconds'`);

/** `claimed`: send now; `busy`: another consumer is sending; otherwise the final status recorded before. */
export type Claim = "claimed" | "busy" | "sent" | "pruned" | "rejected";
export type FinalStatus = "sent" | "pruned" | "rejected" | "failed";

export async function claimDelivery(db: Database, jobId: string, target: string): Promise<Claim> {
	const d = notificationDeliveries;
	const taken = await db
		.insert(d)
		.values({ jobId, target, status: "sending" })
		.onConflictDoUpdate({
			target: [d.jobId, d.target],
			set: { status: "sending", attempts: sql`${d.attempts} + 1`, updatedAt: sql`now()` },
			setWhere: sql`${d.status} = 'failed' OR (${d.status} = 'sending' AND ${d.updatedAt} < now() - ${STALE})`,
		})
		.returning({ status: d.status });
	if (taken.length > 0) return "claimed";
	const [row] = await db
		.select({ status: d.status })
		.from(d)
		.where(and(eq(d.jobId, jobId), eq(d.target, target)));
	if (!row || row.status === "sending" || row.status === "failed") return "busy";
	return row.status;
}

/** `failed` releases the claim for the next attempt; the others are final. */
export async function finishDelivery(
	db: Database,
	jobId: string,
	target: string,
	status: FinalStatus,
	error?: string,
): Promise<void> {
	await db
		.update(notificationDeliveries)
		.set({ status, lastError: error?.slice(0, 500) ?? null, updatedAt: sql`now()` })
		.where(and(eq(notificationDeliveries.jobId, jobId), eq(notificationDeliveries.target, target)));
}

/** What went wrong for a job, newest first: the dead-letter record's reason. */
export async function deliveryErrors(db: Database, jobId: string): Promise<string[]> {
	const rows = await db
		.select({ target: notificationDeliveries.target, error: notificationDeliveries.lastError })
		.from(notificationDeliveries)
		.where(and(eq(notificationDeliveries.jobId, jobId), sql`${notificationDeliveries.lastError} IS NOT NULL`))
		.orderBy(sql`${notificationDeliveries.updatedAt} DESC`);
	return rows.map((r) => `${r.target}: ${r.error}`);
}

export async function sweepDeliveries(db: Database): Promise<void> {
	await db
		.delete(notificationDeliveries)
		.where(lt(notificationDeliveries.updatedAt, new Date(Date.now() - DELIVERY_RETENTION_DAYS * 86_400_000)));
}
