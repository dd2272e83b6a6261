// Conversations and memberships live in Postgres; every change is pushed to
// the conversation's Durable Object (and the members' user channels) at once.
import type { Conversation, ConversationId, Member, SingleServerFrame, UserId } from "@secureconnect/protocol";
import { and, eq, inArray, or } from "drizzle-orm";
import { isBlockedEitherWay } from "../accounts/users.ts";
import type { Database } from "../db/client.ts";
import { blocks, conversationMembers, conversations, users } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { ApiError, DependencyUnavailableError } from "../lib/api-error.ts";
import { withTimeout } from "../lib/timeout.ts";

export const ROOM_TIMEOUT_MS = 5_000;

type ConversationRow = typeof conversations.$inferSelect;

export function roomOf(env: Env, conversationId: string) {
	return env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(conversationId));
}

export function channelOf(env: Env, userId: string) {
	return env.USER_CHANNEL.get(env.USER_CHANNEL.idFromName(userId));
}

/** Calls a Durable Object with a timeout; failure is a 503, not a hang. */
export async function callRoom<T>(what: string, work: Promise<T>): Promise<T> {
	try {
		return await withTimeout(what, ROOM_TIMEOUT_MS, work);
	} catch (error) {
		if (error instanceof ApiError) throw error;
		throw new DependencyUnavailableError("conversation service", error);
	}
}

export async function membersOf(db: Database, conversationId: string): Promise<Member[]> {
	const rows = await db
		.select({ userId: conversationMembers.userId, role: conversationMembers.role })
		.from(conversationMembers)
		.where(eq(conversationMembers.conversationId, conversationId));
	return rows.map((r) => ({ userId: r.userId as UserId, role: r.role }));
}

export function toConversation(row: ConversationRow, members: Member[]): Conversation {
	return {
		id: row.id as ConversationId,
		type: row.type,
		title: row.title,
		members,
		createdAt: row.createdAt.toISOString(),
		retentionSeconds: row.retentionSeconds,
	};
}

/** The conversation, if the user is a member; otherwise 404 (no existence leak). */
export async function conversationForMember(
	db: Database,
	conversationId: string,
	userId: string,
): Promise<{ row: ConversationRow; members: Member[]; role: Member["role"] }> {
	const [row] = await db.select().from(conversations).where(eq(conversations.id, conversationId));
	const members = row ? await membersOf(db, row.id) : [];
	const me = members.find((m) => m.userId === userId);
	if (!row || !me) throw new ApiError(404, "NOT_FOUND", "No such conversation.");
	return { row, members, role: me.role };
}

/** Whether the user is a member, in one indexed lookup (no member list read). */
export async function isMember(db: Database, conversationId: string, userId: string): Promise<boolean> {
	const [row] = await db
		.select({ userId: conversationMembers.userId })
		.from(conversationMembers)
		.where(and(eq(conversationMembers.conversationId, conversationId), eq(conversationMembers.userId, userId)))
		.limit(1);
	return row !== undefined;
}

/** Pushes the current member list to the room: sockets of removed members close at once. */
export async function syncRoom(env: Env, row: ConversationRow, members: Member[], db?: Database): Promise<void> {
	const [a, b] = members;
	const frozen =
		row.type === "direct" && db !== undefined && a !== undefined && b !== undefined
			? await isBlockedEitherWay(db, a.userId, b.userId)
			: false;
	await callRoom("conversation room", roomOf(env, row.id).syncMembers(row.id, members, row.retentionSeconds, frozen));
}

/** After a block or unblock: freeze or thaw the pair's direct conversation. */
export async function resyncDirect(db: Database, env: Env, a: string, b: string): Promise<void> {
	const [row] = await db
		.select()
		.from(conversations)
		.where(eq(conversations.directKey, [a, b].sort().join(":")));
	if (row) await syncRoom(env, row, await membersOf(db, row.id), db);
}

export async function notifyUsers(env: Env, userIds: string[], frame: SingleServerFrame): Promise<void> {
	await Promise.allSettled(userIds.map((id) => channelOf(env, id).notify(id, frame)));
}

/** Refuses when any listed user does not exist or blocks / is blocked by the actor. */
export async function assertReachable(db: Database, actorId: string, userIds: string[]): Promise<void> {
	if (userIds.length === 0) return;
	const found = await db.select({ id: users.id }).from(users).where(inArray(users.id, userIds));
	if (found.length !== new Set(userIds).size) throw new ApiError(404, "NOT_FOUND", "A listed user does not exist.");
	const [blocked] = await db
		.select({ blockerId: blocks.blockerId })
		.from(blocks)
		.where(
			or(
				and(eq(blocks.blockerId, actorId), inArray(blocks.blockedId, userIds)),
				and(inArray(blocks.blockerId, userIds), eq(blocks.blockedId, actorId)),
			),
		)
		.limit(1);
	if (blocked) throw new ApiError(403, "BLOCKED", "A block stands between you and a listed user.");
}

export async function assertNotBlocked(db: Database, a: string, b: string): Promise<void> {
	if (await isBlockedEitherWay(db, a, b))
		throw new ApiError(403, "BLOCKED", "A block stands between you and this user.");
}

/**
 * Ends every socket of revoked sessions at once: the user channel's and those
 * in each of the user's conversations (a room holds sockets only of its
 * members). A room that cannot be reached still closes them at its own
 * periodic session check.
 */
export async function closeSessionSockets(env: Env, db: Database, userId: string, sessionIds: string[]): Promise<void> {
	if (sessionIds.length === 0) return;
	const rooms = await conversationIdsOf(db, userId);
	await Promise.allSettled([
		channelOf(env, userId).closeSessions(sessionIds),
		...rooms.map((id) => roomOf(env, id).closeSessions(sessionIds)),
	]);
}

/** The conversations a user is a member of: the rooms that may hold the user's sockets. */
export async function conversationIdsOf(db: Database, userId: string): Promise<string[]> {
	const rows = await db
		.select({ id: conversationMembers.conversationId })
		.from(conversationMembers)
		.where(eq(conversationMembers.userId, userId));
	return rows.map((r) => r.id);
}
