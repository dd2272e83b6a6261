import { createRoute } from "@hono/zod-openapi";
import {
	AddMembersRequest,
	Conversation,
	type ConversationId,
	ConversationSummary,
	CreateConversationRequest,
	HistoryPage,
	HistoryQuery,
	Message,
	PendingWelcome,
	ReadRequest,
	SendMessageRequest,
	UpdateConversationRequest,
	type UserId,
} from "@secureconnect/protocol";
import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import type { SendResult } from "../../../../chat-room/src/ChatRoom.ts";
import { realtimeLimits } from "../../../../chat-room/src/limits.ts";
import { announceDeparture, removeMembership } from "../../conversations/departure.ts";
import {
	assertNotBlocked,
	assertReachable,
	callRoom,
	channelOf,
	conversationForMember,
	membersOf,
	notifyUsers,
	roomOf,
	syncRoom,
	toConversation,
} from "../../conversations/service.ts";
import type { Database } from "../../db/client.ts";
import { conversationMembers, conversations, devices } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { newId } from "../../lib/ids.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Conversations and messages"];
const IdParam = z.object({ id: z.string().max(64) });
const MemberParam = z.object({ id: z.string().max(64), userId: z.string().max(64) });
const one = z.object({ conversation: Conversation });

const create = createRoute({
	method: "post",
	path: "/v1/conversations",
	tags,
	summary: "Start a conversation; a direct one between two users is unique (asking again returns it with 200)",
	...authed,
	request: { body: jsonBody(CreateConversationRequest) },
	responses: {
		201: jsonResponse(one, "Created"),
		200: jsonResponse(one, "The existing direct conversation"),
		...errorResponses(400, 401, 403, 404),
	},
});
const list = createRoute({
	method: "get",
	path: "/v1/conversations",
	tags,
	summary: "The caller's conversations with lastSeq and unread counts",
	...authed,
	responses: {
		200: jsonResponse(z.object({ conversations: z.array(ConversationSummary) }), "Conversations"),
		...errorResponses(401),
	},
});
const get = createRoute({
	method: "get",
	path: "/v1/conversations/{id}",
	tags,
	summary: "One conversation (404 for non-members)",
	...authed,
	request: { params: IdParam },
	responses: { 200: jsonResponse(one, "Conversation"), ...errorResponses(401, 404) },
});
const patch = createRoute({
	method: "patch",
	path: "/v1/conversations/{id}",
	tags,
	summary: "Change title or disappearing-message retention (owners and admins)",
	...authed,
	request: { params: IdParam, body: jsonBody(UpdateConversationRequest) },
	responses: { 200: jsonResponse(one, "Updated"), ...errorResponses(400, 401, 403, 404) },
});
const addMembers = createRoute({
	method: "post",
	path: "/v1/conversations/{id}/members",
	tags,
	summary: "Add members to a group (owners and admins)",
	...authed,
	request: { params: IdParam, body: jsonBody(AddMembersRequest) },
	responses: { 201: jsonResponse(one, "Added"), ...errorResponses(400, 401, 403, 404, 409) },
});
const removeMember = createRoute({
	method: "delete",
	path: "/v1/conversations/{id}/members/{userId}",
	tags,
	summary: "Remove a member (owners and admins; anyone may remove themselves). Their sockets close at once",
	...authed,
	request: { params: MemberParam },
	responses: { ...NO_CONTENT, ...errorResponses(400, 401, 403, 404) },
});
const history = createRoute({
	method: "get",
	path: "/v1/conversations/{id}/messages",
	tags,
	summary: "History in seq order, after a seq",
	...authed,
	request: { params: IdParam, query: HistoryQuery },
	responses: { 200: jsonResponse(HistoryPage, "Messages"), ...errorResponses(400, 401, 404) },
});
const post = createRoute({
	method: "post",
	path: "/v1/conversations/{id}/messages",
	tags,
	summary: "Send a message; the same clientId again returns the same message",
	...authed,
	request: { params: IdParam, body: jsonBody(SendMessageRequest) },
	responses: {
		201: jsonResponse(z.object({ message: Message }), "Stored"),
		...errorResponses(400, 401, 403, 404, 413),
	},
});
const read = createRoute({
	method: "post",
	path: "/v1/conversations/{id}/read",
	tags,
	summary: "Mark read up to a seq",
	...authed,
	request: { params: IdParam, body: jsonBody(ReadRequest) },
	responses: { ...NO_CONTENT, ...errorResponses(400, 401, 404) },
});

const SEND_ERRORS = {
	TOO_LARGE: [413, "TOO_LARGE"],
	FORBIDDEN: [403, "FORBIDDEN"],
	NOT_FOUND: [404, "NOT_FOUND"],
	CONFLICT: [409, "CONFLICT"],
	STALE_EPOCH: [409, "STALE_EPOCH"],
	INVALID: [400, "VALIDATION_FAILED"],
} as const;

function sendError(result: Extract<SendResult, { ok: false }>): ApiError {
	const [status, code] = SEND_ERRORS[result.code];
	return new ApiError(status, code, result.message, {
		...(result.currentEpoch !== undefined && { details: { currentEpoch: result.currentEpoch } }),
	});
}

const welcomes = createRoute({
	method: "get",
	path: "/v1/conversations/{id}/welcomes",
	tags,
	summary: "MLS Welcome messages waiting for one of the caller's devices",
	...authed,
	request: { params: IdParam, query: z.object({ deviceId: z.string().max(64) }) },
	responses: {
		200: jsonResponse(z.object({ welcomes: z.array(PendingWelcome) }), "Welcomes"),
		...errorResponses(401, 404),
	},
});
const ackWelcome = createRoute({
	method: "delete",
	path: "/v1/conversations/{id}/welcomes/{welcomeId}",
	tags,
	summary: "Drop a Welcome the device has processed",
	...authed,
	request: {
		params: z.object({ id: z.string().max(64), welcomeId: z.string().max(64) }),
		query: z.object({ deviceId: z.string().max(64) }),
	},
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});
const mlsState = createRoute({
	method: "get",
	path: "/v1/conversations/{id}/mls",
	tags,
	summary: "The conversation's MLS group id (hex) and current epoch, as the Delivery Service orders them",
	...authed,
	request: { params: IdParam },
	responses: {
		200: jsonResponse(z.object({ groupId: z.string().nullable(), epoch: z.number().int() }), "State"),
		...errorResponses(401, 404),
	},
});

async function assertOwnDevice(db: Database, userId: string, deviceId: string): Promise<void> {
	const [device] = await db
		.select({ id: devices.id })
		.from(devices)
		.where(and(eq(devices.id, deviceId), eq(devices.userId, userId)));
	if (!device) throw new ApiError(404, "NOT_FOUND", "No such device.");
}

function requireAdmin(role: string): void {
	if (role !== "owner" && role !== "admin") throw new ApiError(403, "FORBIDDEN", "Only owners and admins may do this.");
}

export const conversationRoutes = createRouter()
	.openapi(create, async (c) => {
		const me = c.var.auth.userId;
		const body = c.req.valid("json");
		const db = c.var.db;
		const others = [...new Set(body.memberIds.filter((id) => id !== me))];
		const limits = realtimeLimits(c.env as unknown as Record<string, string>);
		if (body.type === "direct") {
			if (others.length !== 1)
				throw new ApiError(400, "VALIDATION_FAILED", "A direct conversation has exactly one other member.");
			const other = others[0] as UserId;
			await assertReachable(db, me, [other]);
			const directKey = [me, other].sort().join(":");
			const [existing] = await db.select().from(conversations).where(eq(conversations.directKey, directKey));
			if (existing) return c.json({ conversation: toConversation(existing, await membersOf(db, existing.id)) }, 200);
			const [row] = await db
				.insert(conversations)
				.values({ id: newId("conversation"), type: "direct", directKey, createdBy: me })
				.onConflictDoNothing()
				.returning();
			if (!row) {
				const [raced] = await db.select().from(conversations).where(eq(conversations.directKey, directKey));
				if (!raced) throw new Error("direct conversation vanished");
				return c.json({ conversation: toConversation(raced, await membersOf(db, raced.id)) }, 200);
			}
			const members = [
				{ userId: me, role: "member" as const },
				{ userId: other, role: "member" as const },
			];
			await db.insert(conversationMembers).values(members.map((m) => ({ ...m, conversationId: row.id })));
			await syncRoom(c.env, row, members, db);
			await notifyUsers(c.env, [other], {
				type: "membership",
				conversationId: row.id as ConversationId,
				change: "added",
				userId: other,
			});
			return c.json({ conversation: toConversation(row, members) }, 201);
		}
		if (others.length + 1 > limits.MAX_MEMBERS) {
			throw new ApiError(400, "VALIDATION_FAILED", `A conversation has at most ${limits.MAX_MEMBERS} members.`);
		}
		await assertReachable(db, me, others);
		const [row] = await db
			.insert(conversations)
			.values({ id: newId("conversation"), type: "group", title: body.title ?? null, createdBy: me })
			.returning();
		if (!row) throw new Error("insert returned no row");
		const members = [
			{ userId: me, role: "owner" as const },
			...others.map((userId) => ({ userId: userId as UserId, role: "member" as const })),
		];
		await db.insert(conversationMembers).values(members.map((m) => ({ ...m, conversationId: row.id })));
		await syncRoom(c.env, row, members, db);
		await notifyUsers(c.env, others, {
			type: "membership",
			conversationId: row.id as ConversationId,
			change: "added",
			userId: me,
		});
		return c.json({ conversation: toConversation(row, members) }, 201);
	})
	.openapi(list, async (c) => {
		const me = c.var.auth.userId;
		const db = c.var.db;
		const mine = await db
			.select({ conversation: conversations })
			.from(conversationMembers)
			.innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
			.where(eq(conversationMembers.userId, me));
		const ids = mine.map((m) => m.conversation.id);
		const memberRows = ids.length
			? await db.select().from(conversationMembers).where(inArray(conversationMembers.conversationId, ids))
			: [];
		const summaries: Record<string, { lastSeq: number; unread: number }> = ids.length
			? await callRoom("user channel", channelOf(c.env, me).summaries(ids))
			: {};
		const result = mine.map(({ conversation }) => ({
			...toConversation(
				conversation,
				memberRows
					.filter((m) => m.conversationId === conversation.id)
					.map((m) => ({ userId: m.userId as UserId, role: m.role })),
			),
			lastSeq: summaries[conversation.id]?.lastSeq ?? 0,
			unread: summaries[conversation.id]?.unread ?? 0,
		}));
		result.sort((a, b) => b.lastSeq - a.lastSeq || b.createdAt.localeCompare(a.createdAt));
		return c.json({ conversations: result }, 200);
	})
	.openapi(get, async (c) => {
		const { row, members } = await conversationForMember(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		return c.json({ conversation: toConversation(row, members) }, 200);
	})
	.openapi(patch, async (c) => {
		const body = c.req.valid("json");
		const { row, members, role } = await conversationForMember(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		if (row.type === "group") requireAdmin(role);
		if (row.type === "direct" && body.title !== undefined) {
			throw new ApiError(400, "VALIDATION_FAILED", "A direct conversation has no title.");
		}
		const [updated] = await c.var.db
			.update(conversations)
			.set({
				...(body.title !== undefined && { title: body.title }),
				...(body.retentionSeconds !== undefined && { retentionSeconds: body.retentionSeconds }),
				updatedAt: new Date(),
			})
			.where(eq(conversations.id, row.id))
			.returning();
		if (!updated) throw new ApiError(404, "NOT_FOUND", "No such conversation.");
		await syncRoom(c.env, updated, members, c.var.db);
		await notifyUsers(
			c.env,
			members.map((m) => m.userId),
			{ type: "membership", conversationId: row.id as ConversationId, change: "updated", userId: c.var.auth.userId },
		);
		return c.json({ conversation: toConversation(updated, members) }, 200);
	})
	.openapi(addMembers, async (c) => {
		const body = c.req.valid("json");
		const db = c.var.db;
		const { row, members, role } = await conversationForMember(db, c.req.valid("param").id, c.var.auth.userId);
		if (row.type === "direct")
			throw new ApiError(400, "BAD_REQUEST", "Members of a direct conversation cannot change.");
		requireAdmin(role);
		const wanted = [...new Set([...(body.userIds ?? []), ...(body.userId ? [body.userId] : [])])].filter(
			(id) => !members.some((m) => m.userId === id),
		);
		const limits = realtimeLimits(c.env as unknown as Record<string, string>);
		if (members.length + wanted.length > limits.MAX_MEMBERS) {
			throw new ApiError(409, "CONFLICT", `A conversation has at most ${limits.MAX_MEMBERS} members.`);
		}
		await assertReachable(db, c.var.auth.userId, wanted);
		const newRole: "admin" | "member" = body.role === "admin" && role === "owner" ? "admin" : "member";
		if (wanted.length > 0) {
			await db
				.insert(conversationMembers)
				.values(wanted.map((userId) => ({ conversationId: row.id, userId, role: newRole })))
				.onConflictDoNothing();
		}
		const next = await membersOf(db, row.id);
		await syncRoom(c.env, row, next, db);
		await notifyUsers(
			c.env,
			next.map((m) => m.userId),
			{ type: "membership", conversationId: row.id as ConversationId, change: "added", userId: c.var.auth.userId },
		);
		return c.json({ conversation: toConversation(row, next) }, 201);
	})
	.openapi(removeMember, async (c) => {
		const db = c.var.db;
		const me = c.var.auth.userId;
		const { id, userId } = c.req.valid("param");
		const { row, members, role } = await conversationForMember(db, id, me);
		if (row.type === "direct")
			throw new ApiError(400, "BAD_REQUEST", "Members of a direct conversation cannot change.");
		const target = members.find((m) => m.userId === userId);
		if (!target) throw new ApiError(404, "NOT_FOUND", "Not a member.");
		if (userId !== me) {
			requireAdmin(role);
			if (target.role === "owner" || (target.role === "admin" && role !== "owner")) {
				throw new ApiError(403, "FORBIDDEN", "You may not remove this member.");
			}
		}
		const departure = await removeMembership(db, c.env, c.var.log, row, userId, target.role === "owner");
		await announceDeparture(c.env, db, row, userId, departure);
		return c.body(null, 204);
	})
	.openapi(history, async (c) => {
		const { after, limit } = c.req.valid("query");
		const { row } = await conversationForMember(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		return c.json(await callRoom("conversation room", roomOf(c.env, row.id).history(after, limit)), 200);
	})
	.openapi(post, async (c) => {
		const body = c.req.valid("json");
		const me = c.var.auth.userId;
		const { row, members } = await conversationForMember(c.var.db, c.req.valid("param").id, me);
		if (row.type === "direct") {
			const other = members.find((m) => m.userId !== me);
			if (other) await assertNotBlocked(c.var.db, me, other.userId);
		}
		const result = await callRoom<SendResult>(
			"conversation room",
			roomOf(c.env, row.id).send({
				senderId: me,
				senderDeviceId: body.senderDeviceId,
				clientId: body.clientId,
				ciphertext: body.ciphertext,
				welcome: body.welcome,
				requestId: c.var.requestId,
			}),
		);
		if (!result.ok) throw sendError(result);
		// A retry with the same clientId gets the original answer (idempotent replay).
		return c.json({ message: result.message }, 201);
	})
	.openapi(welcomes, async (c) => {
		const { deviceId } = c.req.valid("query");
		const { row } = await conversationForMember(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		await assertOwnDevice(c.var.db, c.var.auth.userId, deviceId);
		return c.json({ welcomes: await callRoom("conversation room", roomOf(c.env, row.id).welcomes(deviceId)) }, 200);
	})
	.openapi(ackWelcome, async (c) => {
		const { id, welcomeId } = c.req.valid("param");
		const { deviceId } = c.req.valid("query");
		const { row } = await conversationForMember(c.var.db, id, c.var.auth.userId);
		await assertOwnDevice(c.var.db, c.var.auth.userId, deviceId);
		if (!(await callRoom("conversation room", roomOf(c.env, row.id).deleteWelcome(deviceId, welcomeId)))) {
			throw new ApiError(404, "NOT_FOUND", "No such welcome.");
		}
		return c.body(null, 204);
	})
	.openapi(mlsState, async (c) => {
		const { row } = await conversationForMember(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		return c.json(await callRoom("conversation room", roomOf(c.env, row.id).mlsState()), 200);
	})
	.openapi(read, async (c) => {
		const { row } = await conversationForMember(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		await callRoom("conversation room", roomOf(c.env, row.id).markRead(c.var.auth.userId, c.req.valid("json").seq));
		return c.body(null, 204);
	});
