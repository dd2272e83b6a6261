// The notifications queue consumer. Jobs are idempotent: each (job, target)
// is claimed in notification_deliveries before it is sent, so a redelivered
// message does not send twice. Transient failures retry with exponential
// back-off (message.retry); after wrangler.toml's max_retries the queue moves
// the message to the dead-letter queue, which consumeDeadLetters records.
// Failures that no retry can fix are recorded as dead letters at once.
import { and, eq, inArray, isNull, lt, type SQL, sql } from "drizzle-orm";
import { type Config, loadConfig } from "../config/config.ts";
import { type Database, openDatabase } from "../db/client.ts";
import { blocks, notificationDeadLetters, outboundEmails, pushSubscriptions } from "../db/schema/index.ts";
import type { EmailJob } from "../email/outbox.ts";
import type { Env } from "../env.ts";
import { type Logger, rootLogger } from "../lib/logger.ts";
import { recordQueueJob } from "../lib/metrics.ts";
import { claimDelivery, deliveryErrors, finishDelivery, sweepDeliveries } from "./deliveries.ts";
import { createEmailProvider, type EmailOutcome, type EmailProvider } from "./email/index.ts";
import { PushDispatcher, type PushDispatcherOptions, type SubscriptionRow } from "./push/index.ts";
import { type DeliveryOutcome, errorReason, type PushPayload } from "./push/types.ts";

/**
 * Something happened for a user who may not be looking: a new message (from
 * the user channel, for users with no open socket) or a call ringing. Where
 * to look, never what it says.
 */
export interface PushJob {
	kind: "push";
	userId: string;
	conversationId: string;
	seq: number;
	requestId: string;
	/** Default "message". */
	event?: "message" | "call";
	callId?: string;
	/**
	 * Messages: who sent the ones this push covers, when known. A user who
	 * blocks every one of them gets no push (the messages still reach them:
	 * a group's ciphertext must, for its MLS state).
	 */
	senderIds?: string[];
}

export type NotificationJob = EmailJob | PushJob;

/** Emails still unsent after this long are enqueued again by the scheduled sweep. */
export const OUTBOX_SWEEP_AFTER_MS = 2 * 60_000;
export const MAX_EMAIL_ATTEMPTS = 6;
export const RETRY_BASE_SECONDS = 10;
export const RETRY_MAX_SECONDS = 15 * 60;
/** A subscription refused this many times in a row without a success is dropped. */
export const MAX_CONSECUTIVE_FAILURES = 10;

/** Exponential back-off with up to 25% jitter; a provider's Retry-After wins when longer. */
export function backoffSeconds(attempts: number, retryAfter?: number): number {
	const exponential = Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.max(0, attempts - 1));
	const jittered = Math.min(RETRY_MAX_SECONDS, exponential + Math.floor(Math.random() * (exponential / 4)));
	return Math.max(jittered, Math.min(retryAfter ?? 0, 3600));
}

/** Deterministic ids: the same event enqueued twice is still one delivery. */
export function jobIdOf(job: NotificationJob): string {
	if (job.kind === "email") return `email:${job.emailId}`;
	if (job.event === "call") return `call:${job.callId ?? job.conversationId}:${job.userId}`;
	return `msg:${job.conversationId}:${job.seq}:${job.userId}`;
}

export function payloadOf(job: PushJob): PushPayload {
	return job.event === "call"
		? {
				kind: "call",
				conversationId: job.conversationId as PushPayload["conversationId"],
				...(job.callId && { callId: job.callId }),
			}
		: { kind: "message", conversationId: job.conversationId as PushPayload["conversationId"], seq: job.seq };
}

export interface ConsumerOptions extends PushDispatcherOptions {
	/** Replaces the provider EMAIL_PROVIDER names (tests). */
	emailProvider?: EmailProvider;
}

interface Context {
	env: Env;
	db: Database;
	config: Config;
	queue: string;
	push: PushDispatcher;
	email: EmailProvider;
	log: Logger;
}

export async function consumeNotifications(
	batch: MessageBatch<NotificationJob>,
	env: Env,
	options: ConsumerOptions = {},
): Promise<void> {
	const config = await loadConfig(env);
	const handle = openDatabase({ ...config.database, onError: () => {} });
	const ctx: Context = {
		env,
		db: handle.db,
		config,
		queue: batch.queue,
		push: new PushDispatcher(config.push, options),
		email: options.emailProvider ?? createEmailProvider(config.email),
		log: rootLogger.child({ queue: batch.queue }),
	};
	try {
		const emails: Message<EmailJob>[] = [];
		const pushes: Message<PushJob>[] = [];
		for (const message of batch.messages) {
			const kind = (message.body as { kind?: unknown } | null)?.kind;
			if (kind === "email") emails.push(message as Message<EmailJob>);
			else if (kind === "push") pushes.push(message as Message<PushJob>);
			else {
				await settle(ctx, message, () => deadLetter(ctx, message, `unknown job kind ${String(kind)}`));
			}
		}
		await Promise.all([deliverEmails(ctx, emails), deliverPushes(ctx, pushes)]);
	} finally {
		await handle.close();
	}
}

/** Runs one message's work; anything thrown (the database, a bug) means: later. */
async function settle(ctx: Context, message: Message<unknown>, work: () => Promise<void>): Promise<void> {
	try {
		await work();
		message.ack();
	} catch (error) {
		const requestId = (message.body as { requestId?: unknown } | null)?.requestId;
		ctx.log.warn("notification job failed; will retry", {
			requestId,
			error,
			messageId: message.id,
			attempts: message.attempts,
		});
		message.retry({ delaySeconds: backoffSeconds(message.attempts) });
	}
}

async function deadLetter(ctx: Context, message: Message<unknown>, reason: string): Promise<void> {
	await recordDeadLetter(ctx.db, ctx.queue, message, reason);
	const body = message.body as { kind?: unknown; requestId?: unknown } | null;
	recordQueueJob(ctx.env, {
		kind: String(body?.kind ?? "unknown"),
		outcome: "dead_letter",
		attempts: message.attempts,
	});
	ctx.log.error("notification job dead-lettered", {
		requestId: body?.requestId,
		messageId: message.id,
		attempts: message.attempts,
		reason,
	});
}

export async function recordDeadLetter(
	db: Database,
	queue: string,
	message: Message<unknown>,
	reason: string,
): Promise<void> {
	const body = message.body as NotificationJob | null;
	const known = body && (body.kind === "email" || body.kind === "push");
	await db
		.insert(notificationDeadLetters)
		.values({
			messageId: message.id,
			queue,
			jobKind: typeof body?.kind === "string" ? body.kind : "unknown",
			jobId: known ? jobIdOf(body) : null,
			job: body ?? {},
			attempts: message.attempts,
			reason: reason.slice(0, 2000),
		})
		.onConflictDoNothing();
	if (body?.kind === "email") {
		await db.update(outboundEmails).set({ failed: true }).where(eq(outboundEmails.id, body.emailId));
	}
}

// ------------------------------------------------------------------ push

async function deliverPushes(ctx: Context, messages: Message<PushJob>[]): Promise<void> {
	// Several new messages in one conversation for one user: one push, for the newest, on behalf of all their senders.
	const newest = new Map<string, Message<PushJob>>();
	const senders = new Map<string, string[] | undefined>();
	const rest: Message<PushJob>[] = [];
	for (const m of messages) {
		if (m.body.event === "call") {
			rest.push(m);
			continue;
		}
		const key = `${m.body.userId} ${m.body.conversationId}`;
		const seen = newest.get(key);
		const known = senders.get(key);
		const theirs = m.body.senderIds;
		senders.set(key, !seen ? theirs : known && theirs ? [...known, ...theirs] : undefined);
		if (!seen || seen.body.seq < m.body.seq) {
			seen?.ack();
			newest.set(key, m);
		} else {
			m.ack();
		}
	}
	await Promise.all([
		...rest.map((m) => deliverPush(ctx, m, undefined)),
		...[...newest].map(([key, m]) => deliverPush(ctx, m, senders.get(key))),
	]);
}

/** True unless the user blocks every one of `senderIds` (folded into the subscriptions query: no extra round trip). */
function notBlockingAll(userId: string, senderIds: string[] | undefined): SQL | undefined {
	const distinct = [...new Set(senderIds ?? [])];
	if (distinct.length === 0) return undefined;
	return sql`(select count(*) from ${blocks} where ${and(eq(blocks.blockerId, userId), inArray(blocks.blockedId, distinct))}) < ${distinct.length}`;
}

type Decision = { retry: boolean; retryAfter?: number; rejected: string[] };

async function deliverPush(ctx: Context, message: Message<PushJob>, senderIds: string[] | undefined): Promise<void> {
	const job = message.body;
	const jobId = jobIdOf(job);
	const log = ctx.log.child({ requestId: job.requestId, job: jobId, messageId: message.id });
	let decision: Decision;
	try {
		const subs = await ctx.db
			.select()
			.from(pushSubscriptions)
			.where(and(eq(pushSubscriptions.userId, job.userId), notBlockingAll(job.userId, senderIds)));
		decision = { retry: false, rejected: [] };
		const payload = payloadOf(job);
		const kinds = [...new Set(subs.map((s) => s.kind))];
		await Promise.all(
			kinds.map((kind) =>
				deliverKind(
					ctx,
					jobId,
					kind,
					subs.filter((s) => s.kind === kind),
					payload,
					decision,
				),
			),
		);
		if (subs.length === 0) log.debug("push job: the user has no push subscriptions, or blocks every sender");
	} catch (error) {
		log.warn("push job failed; will retry", { error, attempts: message.attempts });
		message.retry({ delaySeconds: backoffSeconds(message.attempts) });
		return;
	}
	if (decision.retry) {
		const delaySeconds = backoffSeconds(message.attempts, decision.retryAfter);
		log.warn("push delivery will be retried", { attempts: message.attempts, delaySeconds });
		recordQueueJob(ctx.env, { kind: "push", outcome: "retried", attempts: message.attempts });
		message.retry({ delaySeconds });
		return;
	}
	if (decision.rejected.length > 0) {
		try {
			await deadLetter(ctx, message, decision.rejected.join("; "));
		} catch (error) {
			log.warn("dead letter not recorded; will retry", { error });
			message.retry({ delaySeconds: backoffSeconds(message.attempts) });
			return;
		}
	} else recordQueueJob(ctx.env, { kind: "push", outcome: "delivered", attempts: message.attempts });
	message.ack();
}

async function deliverKind(
	ctx: Context,
	jobId: string,
	kind: SubscriptionRow["kind"],
	subs: SubscriptionRow[],
	payload: PushPayload,
	decision: Decision,
): Promise<void> {
	const claimed: SubscriptionRow[] = [];
	for (const sub of subs) {
		const claim = await claimDelivery(ctx.db, jobId, sub.id);
		if (claim === "claimed") claimed.push(sub);
		else if (claim === "busy") decision.retry = true;
	}
	if (claimed.length === 0) return;
	let outcomes: DeliveryOutcome[];
	try {
		outcomes = await ctx.push.send(kind, claimed, payload);
	} catch (error) {
		const reason = errorReason(error);
		outcomes = claimed.map(() => ({ status: "retry", reason }));
	}
	await Promise.all(claimed.map((sub, i) => record(ctx, jobId, sub, outcomes[i] as DeliveryOutcome, decision)));
}

async function record(
	ctx: Context,
	jobId: string,
	sub: SubscriptionRow,
	outcome: DeliveryOutcome,
	decision: Decision,
): Promise<void> {
	const s = pushSubscriptions;
	switch (outcome.status) {
		case "sent":
			await finishDelivery(ctx.db, jobId, sub.id, "sent");
			await ctx.db.update(s).set({ lastSuccessAt: new Date(), failureCount: 0 }).where(eq(s.id, sub.id));
			return;
		case "prune":
			await finishDelivery(ctx.db, jobId, sub.id, "pruned", outcome.reason);
			await ctx.db.delete(s).where(eq(s.id, sub.id));
			ctx.log.info("push subscription pruned", { subscriptionId: sub.id, kind: sub.kind, reason: outcome.reason });
			return;
		case "retry":
		case "rejected": {
			const retry = outcome.status === "retry";
			await finishDelivery(ctx.db, jobId, sub.id, retry ? "failed" : "rejected", outcome.reason);
			const [row] = await ctx.db
				.update(s)
				.set({ failureCount: sql`${s.failureCount} + 1`, lastFailureAt: new Date() })
				.where(eq(s.id, sub.id))
				.returning({ failureCount: s.failureCount });
			if (retry) {
				decision.retry = true;
				if (outcome.retryAfterSeconds !== undefined) {
					decision.retryAfter = Math.max(decision.retryAfter ?? 0, outcome.retryAfterSeconds);
				}
			} else {
				decision.rejected.push(`${sub.id}: ${outcome.reason}`);
				if (row && row.failureCount >= MAX_CONSECUTIVE_FAILURES) {
					await ctx.db.delete(s).where(eq(s.id, sub.id));
					ctx.log.info("push subscription dropped after repeated refusals", { subscriptionId: sub.id });
				}
			}
			return;
		}
	}
}

// ----------------------------------------------------------------- email

type EmailRow = typeof outboundEmails.$inferSelect;

async function deliverEmails(ctx: Context, messages: Message<EmailJob>[]): Promise<void> {
	if (messages.length === 0) return;
	const ready: Array<{ message: Message<EmailJob>; row: EmailRow }> = [];
	for (const message of messages) {
		try {
			const [row] = await ctx.db.select().from(outboundEmails).where(eq(outboundEmails.id, message.body.emailId));
			if (!row || row.sentAt || row.failed) {
				message.ack();
				continue;
			}
			const claim = await claimDelivery(ctx.db, jobIdOf(message.body), "email");
			if (claim === "busy") {
				message.retry({ delaySeconds: backoffSeconds(message.attempts) });
				continue;
			}
			if (claim !== "claimed") {
				// Settled before, but the outbox row was not updated: do that now, send nothing.
				if (claim === "sent") await markSent(ctx, row.id);
				else await deadLetter(ctx, message, `email ${claim} earlier`);
				message.ack();
				continue;
			}
			await ctx.db
				.update(outboundEmails)
				.set({ attempts: sql`${outboundEmails.attempts} + 1` })
				.where(eq(outboundEmails.id, row.id));
			ready.push({ message, row });
		} catch (error) {
			ctx.log.warn("email job failed; will retry", { error, messageId: message.id });
			message.retry({ delaySeconds: backoffSeconds(message.attempts) });
		}
	}
	if (ready.length === 0) return;
	let outcomes: EmailOutcome[];
	try {
		outcomes = await ctx.email.send(
			ready.map(({ row }) => ({
				id: row.id,
				from: ctx.config.email.from,
				to: row.toEmail,
				subject: row.subject,
				text: row.textBody,
				html: row.htmlBody,
			})),
		);
	} catch (error) {
		const reason = errorReason(error);
		outcomes = ready.map(() => ({ status: "retry", reason }));
	}
	await Promise.all(
		ready.map(async ({ message, row }, i) => {
			const outcome = outcomes[i] ?? { status: "retry", reason: "no outcome" };
			const jobId = jobIdOf(message.body);
			const log = ctx.log.child({ requestId: message.body.requestId, emailId: row.id, messageId: message.id });
			try {
				if (outcome.status === "sent") {
					await finishDelivery(ctx.db, jobId, "email", "sent");
					await markSent(ctx, row.id);
					log.info(ctx.email.name === "dev" ? "email delivered to dev mailbox" : "email sent", {
						template: row.template,
						provider: ctx.email.name,
					});
					recordQueueJob(ctx.env, { kind: "email", outcome: "delivered", attempts: message.attempts });
					message.ack();
				} else if (outcome.status === "retry") {
					await finishDelivery(ctx.db, jobId, "email", "failed", outcome.reason);
					const delaySeconds = backoffSeconds(message.attempts, outcome.retryAfterSeconds);
					log.warn("email not sent; will retry", { reason: outcome.reason, attempts: message.attempts, delaySeconds });
					recordQueueJob(ctx.env, { kind: "email", outcome: "retried", attempts: message.attempts });
					message.retry({ delaySeconds });
				} else {
					await finishDelivery(ctx.db, jobId, "email", "rejected", outcome.reason);
					await deadLetter(ctx, message, outcome.reason);
					message.ack();
				}
			} catch (error) {
				log.warn("email outcome not recorded; will retry", { error });
				message.retry({ delaySeconds: backoffSeconds(message.attempts) });
			}
		}),
	);
}

/** Staging/production keep only metadata once sent: links and codes must not linger in the database. */
async function markSent(ctx: Context, emailId: string): Promise<void> {
	await ctx.db
		.update(outboundEmails)
		.set({
			sentAt: new Date(),
			...(ctx.config.email.clearBodiesAfterSend && { textBody: "", htmlBody: "" }),
		})
		.where(eq(outboundEmails.id, emailId));
}

// ------------------------------------------------------------ dead letters

/** Names of dead-letter queues (`secureconnect-notifications-dlq-<env>`). */
export function isDeadLetterQueue(queue: string): boolean {
	return /-dlq(-|$)/.test(queue);
}

/**
 * Consumer of the dead-letter queue: every message that ran out of attempts
 * is recorded (with what went wrong, from its delivery records) and logged.
 */
export async function consumeDeadLetters(batch: MessageBatch<NotificationJob>, env: Env): Promise<void> {
	const config = await loadConfig(env);
	const handle = openDatabase({ ...config.database, onError: () => {} });
	const log = rootLogger.child({ queue: batch.queue });
	try {
		for (const message of batch.messages) {
			try {
				const body = message.body as NotificationJob | null;
				const known = body && (body.kind === "email" || body.kind === "push");
				const errors = known ? await deliveryErrors(handle.db, jobIdOf(body)) : [];
				const reason = `retries exhausted${errors.length > 0 ? `: ${errors.slice(0, 5).join("; ")}` : ""}`;
				await recordDeadLetter(handle.db, batch.queue, message, reason);
				recordQueueJob(env, { kind: body?.kind ?? "unknown", outcome: "dead_letter", attempts: message.attempts });
				log.error("notification job dead-lettered", {
					requestId: body?.requestId,
					messageId: message.id,
					job: known ? jobIdOf(body) : "unknown",
					reason,
				});
				message.ack();
			} catch (error) {
				log.error("dead letter not recorded; will retry", { error, messageId: message.id });
				message.retry({ delaySeconds: 60 });
			}
		}
	} finally {
		await handle.close();
	}
}

// ------------------------------------------------------------------ sweep

/** Re-enqueues outbox rows whose queue message was lost; forgets old delivery records. */
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
		await sweepDeliveries(handle.db);
		return stale.length;
	} finally {
		await handle.close();
	}
}
