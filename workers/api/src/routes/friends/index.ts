import { createRoute } from "@hono/zod-openapi";
import {
	CreateFriendRequest,
	CreateFriendRequestResponse,
	type FriendRequestId,
	FriendsList,
	type UserId,
} from "@secureconnect/protocol";
import { and, eq, inArray, or } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import { z } from "zod";
import { announceFriendChange } from "../../accounts/friend-events.ts";
import { isBlockedEitherWay, toPublicUser, visibleUser } from "../../accounts/users.ts";
import type { Database } from "../../db/client.ts";
import { friendRequests, friendships, users } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { newId } from "../../lib/ids.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Friends"];
const IdParam = z.object({ id: z.string().max(64) });
const UserIdParam = z.object({ userId: z.string().max(64) });

const list = createRoute({
	method: "get",
	path: "/v1/friends",
	tags,
	summary: "Friends and pending requests both ways",
	...authed,
	responses: { 200: jsonResponse(FriendsList, "Friends"), ...errorResponses(401) },
});
const request = createRoute({
	method: "post",
	path: "/v1/friends/requests",
	tags,
	summary: "Ask a user to be friends; if they already asked you, you are friends at once",
	...authed,
	request: { body: jsonBody(CreateFriendRequest) },
	responses: {
		201: jsonResponse(CreateFriendRequestResponse, "Requested"),
		...errorResponses(400, 401, 403, 404, 409),
	},
});
const accept = createRoute({
	method: "post",
	path: "/v1/friends/requests/{id}/accept",
	tags,
	summary: "Accept an incoming request",
	...authed,
	request: { params: IdParam },
	responses: { ...NO_CONTENT, ...errorResponses(401, 403, 404) },
});
const decline = createRoute({
	method: "post",
	path: "/v1/friends/requests/{id}/decline",
	tags,
	summary: "Decline an incoming request (or withdraw an outgoing one)",
	...authed,
	request: { params: IdParam },
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});
const unfriend = createRoute({
	method: "delete",
	path: "/v1/friends/{userId}",
	tags,
	summary: "End a friendship",
	...authed,
	request: { params: UserIdParam },
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});

const pair = (a: string, b: string) => (a < b ? { userA: a, userB: b } : { userA: b, userB: a });

async function areFriends(db: Database, a: string, b: string): Promise<boolean> {
	const p = pair(a, b);
	const [row] = await db
		.select({ userA: friendships.userA })
		.from(friendships)
		.where(and(eq(friendships.userA, p.userA), eq(friendships.userB, p.userB)));
	return row !== undefined;
}

/** Both users' public profiles (for the friend events), in one query. */
async function profilesOf(db: Database, a: string, b: string) {
	const rows = await db
		.select({ id: users.id, handle: users.handle, displayName: users.displayName })
		.from(users)
		.where(inArray(users.id, [a, b]));
	const find = (id: string) => {
		const row = rows.find((r) => r.id === id);
		if (!row) throw new ApiError(404, "NOT_FOUND", "No such user.");
		return row;
	};
	return [find(a), find(b)] as const;
}

async function befriend(db: Database, a: string, b: string): Promise<Date> {
	const [made] = await db.insert(friendships).values(pair(a, b)).onConflictDoNothing().returning();
	await db
		.delete(friendRequests)
		.where(
			or(
				and(eq(friendRequests.fromUserId, a), eq(friendRequests.toUserId, b)),
				and(eq(friendRequests.fromUserId, b), eq(friendRequests.toUserId, a)),
			),
		);
	return made?.createdAt ?? new Date();
}

export const friendRoutes = createRouter()
	.openapi(list, async (c) => {
		const me = c.var.auth.userId;
		const db = c.var.db;
		const friendRows = await db
			.select({ user: users, since: friendships.createdAt })
			.from(friendships)
			.innerJoin(users, or(eq(users.id, friendships.userA), eq(users.id, friendships.userB)))
			.where(and(or(eq(friendships.userA, me), eq(friendships.userB, me))));
		const other = alias(users, "other");
		const incoming = await db
			.select({ request: friendRequests, user: other })
			.from(friendRequests)
			.innerJoin(other, eq(other.id, friendRequests.fromUserId))
			.where(eq(friendRequests.toUserId, me));
		const outgoing = await db
			.select({ request: friendRequests, user: other })
			.from(friendRequests)
			.innerJoin(other, eq(other.id, friendRequests.toUserId))
			.where(eq(friendRequests.fromUserId, me));
		const toRequest = (r: { request: typeof friendRequests.$inferSelect; user: typeof users.$inferSelect }) => ({
			id: r.request.id as FriendRequestId,
			fromUserId: r.request.fromUserId as UserId,
			toUserId: r.request.toUserId as UserId,
			user: toPublicUser(r.user),
			createdAt: r.request.createdAt.toISOString(),
		});
		return c.json(
			{
				friends: friendRows
					.filter((r) => r.user.id !== me)
					.map((r) => ({ ...toPublicUser(r.user), since: r.since.toISOString() })),
				incoming: incoming.map(toRequest),
				outgoing: outgoing.map(toRequest),
			},
			200,
		);
	})
	.openapi(request, async (c) => {
		const me = c.var.auth.userId;
		const { userId } = c.req.valid("json");
		const db = c.var.db;
		if (userId === me) throw new ApiError(400, "BAD_REQUEST", "You cannot befriend yourself.");
		const target = await getTarget(db, me, userId);
		if (await areFriends(db, me, target.id)) throw new ApiError(409, "CONFLICT", "You are already friends.");
		const [theirs] = await db
			.select()
			.from(friendRequests)
			.where(and(eq(friendRequests.fromUserId, target.id), eq(friendRequests.toUserId, me)));
		if (theirs) {
			const since = await befriend(db, me, target.id);
			const [actor] = await profilesOf(db, me, target.id);
			await announceFriendChange(c.env, "accepted", actor, target, theirs.id, since);
			return c.json(
				{
					request: {
						id: theirs.id as FriendRequestId,
						fromUserId: me,
						toUserId: target.id as UserId,
						user: toPublicUser(target),
						createdAt: theirs.createdAt.toISOString(),
						status: "accepted" as const,
					},
				},
				201,
			);
		}
		const [row] = await db
			.insert(friendRequests)
			.values({ id: newId("friendRequest"), fromUserId: me, toUserId: target.id })
			.onConflictDoNothing()
			.returning();
		if (!row) throw new ApiError(409, "CONFLICT", "You already asked this user.");
		const [actor] = await profilesOf(db, me, target.id);
		await announceFriendChange(c.env, "request", actor, target, row.id, row.createdAt);
		return c.json(
			{
				request: {
					id: row.id as FriendRequestId,
					fromUserId: me,
					toUserId: target.id as UserId,
					user: toPublicUser(target),
					createdAt: row.createdAt.toISOString(),
					status: "pending" as const,
				},
			},
			201,
		);
	})
	.openapi(accept, async (c) => {
		const me = c.var.auth.userId;
		const [row] = await c.var.db
			.select()
			.from(friendRequests)
			.where(and(eq(friendRequests.id, c.req.valid("param").id), eq(friendRequests.toUserId, me)));
		if (!row) throw new ApiError(404, "NOT_FOUND", "No such friend request.");
		if (await isBlockedEitherWay(c.var.db, me, row.fromUserId)) {
			throw new ApiError(403, "BLOCKED", "One of you blocks the other.");
		}
		const since = await befriend(c.var.db, me, row.fromUserId);
		const [actor, requester] = await profilesOf(c.var.db, me, row.fromUserId);
		await announceFriendChange(c.env, "accepted", actor, requester, row.id, since);
		return c.body(null, 204);
	})
	.openapi(decline, async (c) => {
		const me = c.var.auth.userId;
		const [row] = await c.var.db
			.delete(friendRequests)
			.where(
				and(
					eq(friendRequests.id, c.req.valid("param").id),
					or(eq(friendRequests.toUserId, me), eq(friendRequests.fromUserId, me)),
				),
			)
			.returning();
		if (!row) throw new ApiError(404, "NOT_FOUND", "No such friend request.");
		const withdrawn = row.fromUserId === me;
		const [actor, other] = await profilesOf(c.var.db, me, withdrawn ? row.toUserId : row.fromUserId);
		await announceFriendChange(c.env, withdrawn ? "cancelled" : "declined", actor, other, row.id);
		return c.body(null, 204);
	})
	.openapi(unfriend, async (c) => {
		const me = c.var.auth.userId;
		const otherId = c.req.valid("param").userId;
		const p = pair(me, otherId);
		const [row] = await c.var.db
			.delete(friendships)
			.where(and(eq(friendships.userA, p.userA), eq(friendships.userB, p.userB)))
			.returning();
		if (!row) throw new ApiError(404, "NOT_FOUND", "You are not friends with this user.");
		const [actor, other] = await profilesOf(c.var.db, me, otherId);
		await announceFriendChange(c.env, "removed", actor, other);
		return c.body(null, 204);
	});

/** The target of a friend request: blocked either way answers 403, unknown 404. */
async function getTarget(db: Database, me: string, userId: string) {
	try {
		return await visibleUser(db, me, userId);
	} catch (error) {
		const [exists] = await db.select({ id: users.id }).from(users).where(eq(users.id, userId));
		// Only the blocker's own blocks are revealed to them; a blocked user sees 403 without detail.
		if (exists) throw new ApiError(403, "BLOCKED", "You cannot send a friend request to this user.");
		throw error;
	}
}
