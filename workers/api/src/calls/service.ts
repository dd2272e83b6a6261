// The call lifecycle lives in Postgres; ringing and state changes travel over
// the members' user channels (and push), media flows through a media node.
import type { Call, ConversationId, ServerFrame, UserId } from "@secureconnect/protocol";
import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Config } from "../config/config.ts";
import { notifyUsers } from "../conversations/service.ts";
import type { Database } from "../db/client.ts";
import { callParticipants, calls, mediaNodes } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../lib/api-error.ts";

/** A node whose last heartbeat is older than this is not given new calls. */
export const NODE_STALE_MS = 30_000;
export const DEFAULT_RING_SECONDS = 45;
export const DEFAULT_MAX_CALL_PARTICIPANTS = 100;

type CallRow = typeof calls.$inferSelect;

export interface PickedNode {
	id: string;
	url: string;
}

/** The least-loaded healthy node; in development, MEDIA_NODE_URL before any node has registered. */
export async function pickNode(db: Database, config: Config): Promise<PickedNode> {
	const [node] = await db
		.select({ id: mediaNodes.id, url: mediaNodes.url })
		.from(mediaNodes)
		.where(
			and(
				gt(mediaNodes.lastHeartbeatAt, new Date(Date.now() - NODE_STALE_MS)),
				eq(mediaNodes.draining, 0),
				sql`${mediaNodes.peers} < ${mediaNodes.capacity}`,
			),
		)
		.orderBy(asc(sql`${mediaNodes.peers}::float / greatest(${mediaNodes.capacity}, 1)`), asc(mediaNodes.calls))
		.limit(1);
	if (node) return node;
	if (config.mediaNodeUrl) return { id: "static", url: staticNodeUrl(config.mediaNodeUrl) };
	throw new ApiError(503, "SERVICE_UNAVAILABLE", "No media node is available; try again shortly.", { retryAfter: 10 });
}

export function staticNodeUrl(mediaNodeUrl: string): string {
	return `${mediaNodeUrl.replace(/^http/, "ws").replace(/\/$/, "")}/v1/rtc`;
}

export async function nodeUrlOf(db: Database, config: Config, nodeId: string): Promise<string> {
	if (nodeId === "static" && config.mediaNodeUrl) return staticNodeUrl(config.mediaNodeUrl);
	const [node] = await db.select({ url: mediaNodes.url }).from(mediaNodes).where(eq(mediaNodes.id, nodeId));
	if (!node) throw new ApiError(503, "SERVICE_UNAVAILABLE", "The call's media node is gone.", { retryAfter: 10 });
	return node.url;
}

export async function loadCall(db: Database, callId: string): Promise<{ row: CallRow; call: Call } | undefined> {
	const [row] = await db.select().from(calls).where(eq(calls.id, callId));
	if (!row) return undefined;
	const participants = await db
		.select({ userId: callParticipants.userId, state: callParticipants.state })
		.from(callParticipants)
		.where(eq(callParticipants.callId, callId));
	return {
		row,
		call: {
			id: row.id,
			conversationId: row.conversationId as ConversationId,
			media: row.media,
			state: row.state,
			initiatorId: row.initiatorId as UserId | null,
			participants: participants.map((p) => ({ userId: p.userId as UserId, state: p.state })),
			createdAt: row.createdAt.toISOString(),
			endedAt: row.endedAt?.toISOString() ?? null,
		},
	};
}

/** Users already in another live call (busy for a new one). */
export async function busyUsers(db: Database, userIds: string[]): Promise<Set<string>> {
	if (userIds.length === 0) return new Set();
	const rows = await db
		.select({ userId: callParticipants.userId })
		.from(callParticipants)
		.innerJoin(calls, eq(calls.id, callParticipants.callId))
		.where(
			and(
				inArray(callParticipants.userId, userIds),
				eq(callParticipants.state, "joined"),
				inArray(calls.state, ["ringing", "active"]),
			),
		);
	return new Set(rows.map((r) => r.userId));
}

export function callFrame(
	call: Pick<Call, "id" | "conversationId" | "media">,
	event: Extract<ServerFrame, { type: "call" }>["event"],
	userId: string,
): ServerFrame {
	return {
		type: "call",
		event,
		callId: call.id,
		conversationId: call.conversationId,
		userId: userId as UserId,
		media: call.media,
	};
}

export async function tellParticipants(env: Env, db: Database, callId: string, frame: ServerFrame): Promise<void> {
	const loaded = await loadCall(db, callId);
	if (!loaded) return;
	await notifyUsers(
		env,
		loaded.call.participants.map((p) => p.userId),
		frame,
	);
}

/** Ends the call when nobody is in it any more. */
export async function endIfEmpty(env: Env, db: Database, callId: string, reason: string): Promise<void> {
	const [inside] = await db
		.select({ userId: callParticipants.userId })
		.from(callParticipants)
		.where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, "joined")))
		.limit(1);
	if (inside) return;
	await endCall(env, db, callId, reason);
}

export async function endCall(env: Env, db: Database, callId: string, reason: string, by?: string): Promise<void> {
	const [ended] = await db
		.update(calls)
		.set({ state: "ended", endedAt: new Date(), endedReason: reason })
		.where(and(eq(calls.id, callId), inArray(calls.state, ["ringing", "active"])))
		.returning();
	if (!ended) return;
	await db
		.update(callParticipants)
		.set({ state: "left", leftAt: new Date() })
		.where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, "joined")));
	await db
		.update(callParticipants)
		.set({ state: "missed" })
		.where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, "ringing")));
	await tellParticipants(
		env,
		db,
		callId,
		callFrame(
			{ id: ended.id, conversationId: ended.conversationId as ConversationId, media: ended.media },
			"ended",
			by ?? ended.initiatorId ?? "",
		),
	);
}

/** Nobody answered in time: the call is missed for everyone who was rung. */
export async function expireRinging(env: Env, db: Database, callId: string): Promise<boolean> {
	const [missed] = await db
		.update(calls)
		.set({ state: "missed", endedAt: new Date(), endedReason: "no_answer" })
		.where(and(eq(calls.id, callId), eq(calls.state, "ringing")))
		.returning();
	if (!missed) return false;
	await db
		.update(callParticipants)
		.set({ state: "missed" })
		.where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, "ringing")));
	await db
		.update(callParticipants)
		.set({ state: "left", leftAt: new Date() })
		.where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, "joined")));
	await tellParticipants(
		env,
		db,
		callId,
		callFrame(
			{ id: missed.id, conversationId: missed.conversationId as ConversationId, media: missed.media },
			"missed",
			missed.initiatorId ?? "",
		),
	);
	return true;
}

/** Nodes that registered but stopped beating: reported once per cron tick until they return or a day passes. */
export async function staleNodes(
	db: Database,
	now = Date.now(),
): Promise<Array<{ id: string; lastHeartbeatAt: Date }>> {
	return db
		.select({ id: mediaNodes.id, lastHeartbeatAt: mediaNodes.lastHeartbeatAt })
		.from(mediaNodes)
		.where(
			and(
				sql`${mediaNodes.lastHeartbeatAt} < ${new Date(now - NODE_STALE_MS)}`,
				gt(mediaNodes.lastHeartbeatAt, new Date(now - 86_400_000)),
			),
		);
}
