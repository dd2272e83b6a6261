// A member leaves a conversation (removed, left, or their account deleted).
// A group is never left without an owner: the role passes on first.
import type { ConversationId, Member, UserId } from "@secureconnect/protocol";
import { and, asc, desc, eq, ne, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { conversationMembers, conversations } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { deleteConversationFiles } from "../files/cleanup.ts";
import type { Logger } from "../lib/logger.ts";
import { channelOf, membersOf, notifyUsers, syncRoom } from "./service.ts";

type ConversationRow = typeof conversations.$inferSelect;

export interface Departure {
	/** The members left. */
	next: Member[];
	/** Who became owner because the owner left. */
	heir: UserId | undefined;
}

/** The longest-standing admin, else the longest-standing member, other than `leavingId`. */
async function heirOf(db: Database, conversationId: string, leavingId: string): Promise<UserId | undefined> {
	const m = conversationMembers;
	const [row] = await db
		.select({ userId: m.userId })
		.from(m)
		.where(and(eq(m.conversationId, conversationId), ne(m.userId, leavingId)))
		.orderBy(desc(sql`${m.role} = 'admin'`), asc(m.joinedAt), asc(m.userId))
		.limit(1);
	return row?.userId as UserId | undefined;
}

/**
 * Removes the membership (an owner's role passing to the heir first) and, when
 * nobody is left, the conversation and its files.
 */
export async function removeMembership(
	db: Database,
	env: Env,
	log: Logger,
	row: ConversationRow,
	userId: string,
	wasOwner: boolean,
): Promise<Departure> {
	const m = conversationMembers;
	const heir = wasOwner ? await heirOf(db, row.id, userId) : undefined;
	if (heir) {
		await db
			.update(m)
			.set({ role: "owner" })
			.where(and(eq(m.conversationId, row.id), eq(m.userId, heir)));
	}
	await db.delete(m).where(and(eq(m.conversationId, row.id), eq(m.userId, userId)));
	const next = await membersOf(db, row.id);
	if (next.length === 0) {
		await deleteConversationFiles(db, env, row.id, log);
		await db.delete(conversations).where(eq(conversations.id, row.id));
	}
	return { next, heir };
}

/** Tells the room (its sockets of the leaver close) and the members' channels. */
export async function announceDeparture(
	env: Env,
	db: Database,
	row: ConversationRow,
	userId: string,
	{ next, heir }: Departure,
): Promise<void> {
	await syncRoom(env, row, next, db);
	await channelOf(env, userId)
		.forget(row.id)
		.catch(() => {});
	const conversationId = row.id as ConversationId;
	await notifyUsers(env, [userId, ...next.map((x) => x.userId)], {
		type: "membership",
		conversationId,
		change: "removed",
		userId: userId as UserId,
	});
	if (heir) {
		await notifyUsers(
			env,
			next.map((x) => x.userId),
			{ type: "membership", conversationId, change: "role_changed", userId: heir, role: "owner" },
		);
	}
}

/**
 * Before an account is deleted: leaves every conversation the way a member
 * leaves a group, so no group is left without an owner. The rooms are told
 * best-effort: the account's sessions die with it, so its sockets close anyway.
 */
export async function leaveAllConversations(db: Database, env: Env, log: Logger, userId: string): Promise<void> {
	const mine = await db
		.select({ conversation: conversations, role: conversationMembers.role })
		.from(conversationMembers)
		.innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
		.where(eq(conversationMembers.userId, userId));
	const departures: Array<{ row: ConversationRow; departure: Departure }> = [];
	for (const { conversation, role } of mine) {
		departures.push({
			row: conversation,
			departure: await removeMembership(db, env, log, conversation, userId, role === "owner"),
		});
	}
	const told = await Promise.allSettled(
		departures.map(({ row, departure }) => announceDeparture(env, db, row, userId, departure)),
	);
	const failed = told.filter((t) => t.status === "rejected").length;
	if (failed > 0) log.warn("rooms not told of a deleted account's departure", { failed });
}
