// The call lifecycle lives in Postgres; ringing and state changes travel over
// the members' user channels (and push), media flows through a media node.
import type { Call, ConversationId, SingleServerFrame, UserId } from "@secureconnect/protocol";
import { and, asc, eq, gt, inArray, ne, sql } from "drizzle-orm";
import type { Config } from "../config/config.ts";
import { notifyUsers } from "../conversations/service.ts";
import type { Database } from "../db/client.ts";
import { blocks, callParticipants, calls, mediaNodes } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../lib/api-error.ts";

/**
 * Default of MEDIA_NODE_STALE_SECONDS: a node whose last heartbeat is older
 * than this (three missed beats at the media node's default 10 s) is dead: it
 * gets no new calls, and the next join of each of its calls moves the call.
 */
export const DEFAULT_NODE_STALE_SECONDS = 30;
/** The default threshold in milliseconds (the configured one is `config.calls.nodeStaleSeconds`). */
export const NODE_STALE_MS = DEFAULT_NODE_STALE_SECONDS * 1000;
export const DEFAULT_RING_SECONDS = 45;
export const DEFAULT_MAX_CALL_PARTICIPANTS = 100;
/** Retry-After (seconds) when no media node can take a call. */
const NO_NODE_RETRY_AFTER = 5;

type CallRow = typeof calls.$inferSelect;

export interface PickedNode {
	id: string;
	url: string;
}

const staleMsOf = (config: Config) => config.calls.nodeStaleSeconds * 1000;

export interface PickOptions {
	/** Never this node (the one a call is leaving). */
	exclude?: string;
	/** Fall back to MEDIA_NODE_URL when no node has registered (default true; a call leaving a dead node does not). */
	fallback?: boolean;
	now?: number;
}

/** The least-loaded healthy node; in development, MEDIA_NODE_URL before any node has registered. */
export async function pickNode(db: Database, config: Config, options: PickOptions = {}): Promise<PickedNode> {
	const now = options.now ?? Date.now();
	const [node] = await db
		.select({ id: mediaNodes.id, url: mediaNodes.url })
		.from(mediaNodes)
		.where(
			and(
				gt(mediaNodes.lastHeartbeatAt, new Date(now - staleMsOf(config))),
				eq(mediaNodes.draining, 0),
				sql`${mediaNodes.peers} < ${mediaNodes.capacity}`,
				options.exclude === undefined ? undefined : ne(mediaNodes.id, options.exclude),
			),
		)
		.orderBy(asc(sql`${mediaNodes.peers}::float / greatest(${mediaNodes.capacity}, 1)`), asc(mediaNodes.calls))
		.limit(1);
	if (node) return node;
	if (options.fallback !== false && config.mediaNodeUrl) {
		return { id: "static", url: staticNodeUrl(config.mediaNodeUrl) };
	}
	throw new ApiError(
		503,
		"SERVICE_UNAVAILABLE",
		options.exclude === undefined
			? "No media node is available; try again shortly."
			: "The call's media node is down and no other media node is available; try again shortly.",
		{ retryAfter: NO_NODE_RETRY_AFTER },
	);
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

/**
 * Whether a node can carry its calls: registered, beating within the stale
 * threshold and not draining. A full node still carries the calls it has;
 * "static" (MEDIA_NODE_URL, no heartbeats) is taken on trust.
 */
export async function nodeHealth(
	db: Database,
	config: Config,
	nodeId: string,
	now = Date.now(),
): Promise<{ url: string; alive: boolean } | undefined> {
	if (nodeId === "static") {
		return config.mediaNodeUrl ? { url: staticNodeUrl(config.mediaNodeUrl), alive: true } : undefined;
	}
	const [node] = await db
		.select({ url: mediaNodes.url, lastHeartbeatAt: mediaNodes.lastHeartbeatAt, draining: mediaNodes.draining })
		.from(mediaNodes)
		.where(eq(mediaNodes.id, nodeId));
	if (!node) return undefined;
	return {
		url: node.url,
		alive: node.draining === 0 && node.lastHeartbeatAt.getTime() > now - staleMsOf(config),
	};
}

/**
 * Re-pins a live call from `from` to `to` with one conditional UPDATE: of two
 * requests moving the same call at once, only the first changes the row; the
 * other learns where the call is now. Answers the node the call is on.
 */
export async function moveCall(
	db: Database,
	callId: string,
	from: string,
	to: string,
): Promise<{ nodeId: string; moved: boolean } | undefined> {
	const [moved] = await db
		.update(calls)
		.set({ nodeId: to })
		.where(and(eq(calls.id, callId), eq(calls.nodeId, from), inArray(calls.state, ["ringing", "active"])))
		.returning({ nodeId: calls.nodeId });
	if (moved) return { nodeId: moved.nodeId, moved: true };
	const [row] = await db
		.select({ nodeId: calls.nodeId })
		.from(calls)
		.where(and(eq(calls.id, callId), inArray(calls.state, ["ringing", "active"])));
	return row ? { nodeId: row.nodeId, moved: false } : undefined;
}

/**
 * The node to join a call on: its pinned node while that node is alive;
 * otherwise (stale heartbeats, draining, unregistered) the least-loaded
 * healthy node, to which the call moves (`movedFrom` says from where). Two
 * participants arriving at once land on the same node. 503 when no node can
 * take the call, 409 when the call ended meanwhile.
 */
export async function liveNodeFor(
	db: Database,
	config: Config,
	callId: string,
	nodeId: string,
	now = Date.now(),
): Promise<PickedNode & { movedFrom?: string }> {
	let current = nodeId;
	for (let attempt = 0; attempt < 3; attempt++) {
		const health = await nodeHealth(db, config, current, now);
		if (health?.alive) return { id: current, url: health.url };
		const next = await pickNode(db, config, { exclude: current, fallback: false, now });
		const result = await moveCall(db, callId, current, next.id);
		if (!result) throw new ApiError(409, "CONFLICT", "The call is over.");
		if (result.moved) return { ...next, movedFrom: current };
		current = result.nodeId;
	}
	throw new ApiError(503, "SERVICE_UNAVAILABLE", "The call's media node keeps changing; try again shortly.", {
		retryAfter: NO_NODE_RETRY_AFTER,
	});
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

/**
 * Of `userIds`, those who block `callerId`: a group call does not ring,
 * notify or push them (they may still join it themselves).
 */
export async function blockersOf(db: Database, callerId: string, userIds: string[]): Promise<Set<string>> {
	if (userIds.length === 0) return new Set();
	const rows = await db
		.select({ userId: blocks.blockerId })
		.from(blocks)
		.where(and(eq(blocks.blockedId, callerId), inArray(blocks.blockerId, userIds)));
	return new Set(rows.map((r) => r.userId));
}

export function callFrame(
	call: Pick<Call, "id" | "conversationId" | "media">,
	event: Extract<SingleServerFrame, { type: "call" }>["event"],
	userId: string,
	extra: { nodeId?: string } = {},
): SingleServerFrame {
	return {
		type: "call",
		event,
		callId: call.id,
		conversationId: call.conversationId,
		userId: userId as UserId,
		media: call.media,
		...(extra.nodeId !== undefined && { nodeId: extra.nodeId }),
	};
}

export async function tellParticipants(
	env: Env,
	db: Database,
	callId: string,
	frame: SingleServerFrame,
): Promise<void> {
	const loaded = await loadCall(db, callId);
	if (!loaded) return;
	await notifyUsers(
		env,
		loaded.call.participants.map((p) => p.userId),
		frame,
	);
}

/** Ends the call when nobody is in it any more. */
/** Ends the call once nobody is in it; true when this call ended it. */
export async function endIfEmpty(env: Env, db: Database, callId: string, reason: string): Promise<boolean> {
	const [inside] = await db
		.select({ userId: callParticipants.userId })
		.from(callParticipants)
		.where(and(eq(callParticipants.callId, callId), eq(callParticipants.state, "joined")))
		.limit(1);
	if (inside) return false;
	return endCall(env, db, callId, reason);
}

/** True when this call ended it (false: it was already over). */
export async function endCall(env: Env, db: Database, callId: string, reason: string, by?: string): Promise<boolean> {
	const [ended] = await db
		.update(calls)
		.set({ state: "ended", endedAt: new Date(), endedReason: reason })
		.where(and(eq(calls.id, callId), inArray(calls.state, ["ringing", "active"])))
		.returning();
	if (!ended) return false;
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
	return true;
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
	staleMs = NODE_STALE_MS,
): Promise<Array<{ id: string; lastHeartbeatAt: Date }>> {
	return db
		.select({ id: mediaNodes.id, lastHeartbeatAt: mediaNodes.lastHeartbeatAt })
		.from(mediaNodes)
		.where(
			and(
				sql`${mediaNodes.lastHeartbeatAt} < ${new Date(now - staleMs)}`,
				gt(mediaNodes.lastHeartbeatAt, new Date(now - 86_400_000)),
			),
		);
}
