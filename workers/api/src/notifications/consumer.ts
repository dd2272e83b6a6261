// The notifications queue consumer. Jobs are idempotent: a redelivered job whose
// work is already done is acknowledged without doing it again.
import { and, eq, isNull, lt, sql } from "drizzle-orm";
import { loadConfig } from "../config/config.ts";
import { openDatabase } from "../db/client.ts";
import { outboundEmails } from "../db/schema/index.ts";
import type { EmailJob } from "../email/outbox.ts";
import type { Env } from "../env.ts";
import { rootLogger } from "../lib/logger.ts";
import { recordQueueJob } from "../lib/metrics.ts";

/** A new message for a user with no open socket: where to look, never what it says. */
export interface PushJob {
	kind: "push";
	userId: string;
	conversationId: string;
	seq: number;
	requestId: string;
}

export type NotificationJob = EmailJob | PushJob;

/** Emails still unsent after this long are enqueued again by the scheduled sweep. */
export const OUTBOX_SWEEP_AFTER_MS = 2 * 60_000;
export const MAX_EMAIL_ATTEMPTS = 6;
/** `max_retries` of the queue consumers in wrangler.toml: a job failing after this many retries is dead-lettered. */
export const QUEUE_MAX_RETRIES = 5;

export async function consumeNotifications(batch: MessageBatch<NotificationJob>, env: Env): Promise<void> {
	const config = await loadConfig(env);
	const handle = openDatabase({ ...config.database, onError: () => {} });
	try {
		for (const message of batch.messages) {
			const log = rootLogger.child({
				requestId: message.body.requestId,
				job: message.body.kind,
				messageId: message.id,
			});
			const job = message.body;
			if (job.kind === "push") {
				// Devices register push subscriptions with the notifications API; none exist for this user yet.
				log.debug("push job: no push subscriptions registered", { userId: job.userId });
				recordQueueJob(env, { kind: "push", outcome: "skipped", attempts: message.attempts });
				message.ack();
				continue;
			}
			try {
				const [email] = await handle.db.select().from(outboundEmails).where(eq(outboundEmails.id, job.emailId));
				if (!email || email.sentAt) {
					recordQueueJob(env, { kind: "email", outcome: "skipped", attempts: message.attempts });
					message.ack();
					continue;
				}
				await handle.db
					.update(outboundEmails)
					.set({ attempts: sql`${outboundEmails.attempts} + 1` })
					.where(eq(outboundEmails.id, email.id));
				if (config.environment === "dev" || config.environment === "test") {
					// Development delivers into the dev mailbox (GET /dev/mailbox).
					await handle.db.update(outboundEmails).set({ sentAt: new Date() }).where(eq(outboundEmails.id, email.id));
					log.info("email delivered to dev mailbox", { emailId: email.id, template: email.template });
					recordQueueJob(env, { kind: "email", outcome: "delivered", attempts: message.attempts });
					message.ack();
					continue;
				}
				throw new Error("no email provider is configured");
			} catch (error) {
				const dead = message.attempts > QUEUE_MAX_RETRIES;
				if (dead) log.error("notification job failed for good; dead-lettered", { error, attempts: message.attempts });
				else log.warn("notification job failed; will retry", { error, attempts: message.attempts });
				recordQueueJob(env, { kind: job.kind, outcome: dead ? "dead_letter" : "retried", attempts: message.attempts });
				message.retry({ delaySeconds: Math.min(300, 2 ** message.attempts * 5) });
			}
		}
	} finally {
		await handle.close();
	}
}

/** Re-enqueues outbox rows whose queue message was lost. */
export async function sweepOutbox(env: Env): Promise<number> {
	const config = await loadConfig(env);
	const handle = openDatabase({ ...config.database, onError: () => {} });
	try {
		const stale = await handle.db
			.select({ id: outboundEmails.id, requestId: outboundEmails.requestId })
			.from(outboundEmails)
			.where(
				and(
					isNull(outboundEmails.sentAt),
					eq(outboundEmails.failed, false),
					lt(outboundEmails.createdAt, new Date(Date.now() - OUTBOX_SWEEP_AFTER_MS)),
					lt(outboundEmails.attempts, MAX_EMAIL_ATTEMPTS),
				),
			)
			.limit(100);
		if (stale.length > 0) {
			await env.NOTIFICATIONS.sendBatch(
				stale.map((e) => ({
					body: { kind: "email", emailId: e.id, requestId: e.requestId ?? "sweep" } satisfies EmailJob,
				})),
			);
		}
		return stale.length;
	} finally {
		await handle.close();
	}
}
