import { createRoute } from "@hono/zod-openapi";
import { Handle, PublicUser, UpdateMeRequest, User } from "@secureconnect/protocol";
import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import { toPublicUser, toUser, uniqueViolation, visibleUser } from "../../accounts/users.ts";
import { leaveAllConversations } from "../../conversations/departure.ts";
import { users } from "../../db/schema/index.ts";
import { deleteUserFiles } from "../../files/cleanup.ts";
import { ApiError } from "../../lib/api-error.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Users"];
const me = z.object({ user: User });
/**
 * API.md gives a public profile as `{id, handle, displayName}` at the top
 * level; `user` carries the same fields for clients written against the
 * wrapped body this route answered first.
 */
const publicProfile = PublicUser.extend({ user: PublicUser });

const getMe = createRoute({
	method: "get",
	path: "/v1/users/me",
	tags,
	summary: "Own profile",
	...authed,
	responses: { 200: jsonResponse(me, "Profile"), ...errorResponses(401) },
});
const patchMe = createRoute({
	method: "patch",
	path: "/v1/users/me",
	tags,
	summary: "Change display name or handle",
	...authed,
	request: { body: jsonBody(UpdateMeRequest) },
	responses: { 200: jsonResponse(me, "Updated profile"), ...errorResponses(400, 401, 409) },
});
const deleteMe = createRoute({
	method: "delete",
	path: "/v1/users/me",
	tags,
	summary: "Erase the account and its data; every session ends",
	...authed,
	responses: { ...NO_CONTENT, ...errorResponses(401) },
});
const lookup = createRoute({
	method: "get",
	path: "/v1/users",
	tags,
	summary: "Exact handle lookup (case-insensitive)",
	...authed,
	request: { query: z.object({ handle: Handle }) },
	responses: {
		200: jsonResponse(z.object({ users: z.array(PublicUser) }), "Matches (zero or one)"),
		...errorResponses(400, 401),
	},
});
const getOne = createRoute({
	method: "get",
	path: "/v1/users/{id}",
	tags,
	summary: "Public profile",
	...authed,
	request: { params: z.object({ id: z.string().max(64) }) },
	responses: { 200: jsonResponse(publicProfile, "Public profile"), ...errorResponses(401, 404) },
});

export const userRoutes = createRouter()
	.openapi(getMe, async (c) => {
		const row = await visibleUser(c.var.db, c.var.auth.userId, c.var.auth.userId);
		return c.json({ user: toUser(row) }, 200);
	})
	.openapi(patchMe, async (c) => {
		const body = c.req.valid("json");
		try {
			const [row] = await c.var.db
				.update(users)
				.set({ ...body, updatedAt: new Date() })
				.where(eq(users.id, c.var.auth.userId))
				.returning();
			if (!row) throw new ApiError(404, "NOT_FOUND", "No such user.");
			return c.json({ user: toUser(row) }, 200);
		} catch (error) {
			throw uniqueViolation(error) ?? error;
		}
	})
	.openapi(deleteMe, async (c) => {
		// Stored files first (503 if storage is down, so no account is deleted with its files left behind).
		await deleteUserFiles(c.var.db, c.env, c.var.auth.userId, c.var.log);
		// Groups it owned pass to their heirs; the rooms learn their new member lists.
		await leaveAllConversations(c.var.db, c.env, c.var.log, c.var.auth.userId);
		// Sessions, devices, tokens, friendships, blocks and emails go with the row (ON DELETE CASCADE).
		await c.var.db.delete(users).where(eq(users.id, c.var.auth.userId));
		c.var.log.info("account deleted");
		return c.body(null, 204);
	})
	.openapi(lookup, async (c) => {
		const { handle } = c.req.valid("query");
		const [row] = await c.var.db
			.select()
			.from(users)
			.where(eq(sql`lower(${users.handle})`, handle.toLowerCase()));
		if (!row) return c.json({ users: [] }, 200);
		try {
			const visible = await visibleUser(c.var.db, c.var.auth.userId, row.id);
			return c.json({ users: [toPublicUser(visible)] }, 200);
		} catch {
			return c.json({ users: [] }, 200);
		}
	})
	.openapi(getOne, async (c) => {
		const row = await visibleUser(c.var.db, c.var.auth.userId, c.req.valid("param").id);
		const profile = toPublicUser(row);
		return c.json({ ...profile, user: profile }, 200);
	});
