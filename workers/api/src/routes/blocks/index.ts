import { createRoute } from "@hono/zod-openapi";
import { BlockList } from "@secureconnect/protocol";
import { and, eq, or } from "drizzle-orm";
import { z } from "zod";
import { getUser, toPublicUser } from "../../accounts/users.ts";
import { resyncDirect } from "../../conversations/service.ts";
import { blocks, friendRequests, friendships, users } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { authed, createRouter, errorResponses, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Blocks"];
const UserIdParam = z.object({ userId: z.string().max(64) });

const list = createRoute({
	method: "get",
	path: "/v1/blocks",
	tags,
	summary: "Users you block",
	...authed,
	responses: { 200: jsonResponse(BlockList, "Blocked users"), ...errorResponses(401) },
});
const put = createRoute({
	method: "put",
	path: "/v1/blocks/{userId}",
	tags,
	summary: "Block a user: they can no longer message, call, friend-request or add you; a friendship ends",
	...authed,
	request: { params: UserIdParam },
	responses: { ...NO_CONTENT, ...errorResponses(400, 401, 404) },
});
const remove = createRoute({
	method: "delete",
	path: "/v1/blocks/{userId}",
	tags,
	summary: "Unblock a user",
	...authed,
	request: { params: UserIdParam },
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});

export const blockRoutes = createRouter()
	.openapi(list, async (c) => {
		const rows = await c.var.db
			.select({ user: users, createdAt: blocks.createdAt })
			.from(blocks)
			.innerJoin(users, eq(users.id, blocks.blockedId))
			.where(eq(blocks.blockerId, c.var.auth.userId));
		return c.json(
			{ blocks: rows.map((r) => ({ user: toPublicUser(r.user), createdAt: r.createdAt.toISOString() })) },
			200,
		);
	})
	.openapi(put, async (c) => {
		const me = c.var.auth.userId;
		const { userId } = c.req.valid("param");
		if (userId === me) throw new ApiError(400, "BAD_REQUEST", "You cannot block yourself.");
		if (!(await getUser(c.var.db, userId))) throw new ApiError(404, "NOT_FOUND", "No such user.");
		const db = c.var.db;
		await db.insert(blocks).values({ blockerId: me, blockedId: userId }).onConflictDoNothing();
		const [a, b] = me < userId ? [me, userId] : [userId, me];
		await db.delete(friendships).where(and(eq(friendships.userA, a), eq(friendships.userB, b)));
		await db
			.delete(friendRequests)
			.where(
				or(
					and(eq(friendRequests.fromUserId, me), eq(friendRequests.toUserId, userId)),
					and(eq(friendRequests.fromUserId, userId), eq(friendRequests.toUserId, me)),
				),
			);
		await resyncDirect(db, c.env, me, userId);
		return c.body(null, 204);
	})
	.openapi(remove, async (c) => {
		const [row] = await c.var.db
			.delete(blocks)
			.where(and(eq(blocks.blockerId, c.var.auth.userId), eq(blocks.blockedId, c.req.valid("param").userId)))
			.returning();
		if (!row) throw new ApiError(404, "NOT_FOUND", "You do not block this user.");
		await resyncDirect(c.var.db, c.env, c.var.auth.userId, row.blockedId);
		return c.body(null, 204);
	});
