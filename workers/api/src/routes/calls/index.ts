import { createRoute } from "@hono/zod-openapi";
import { Call, JoinInfo, StartCallRequest, TurnCredentials } from "@secureconnect/protocol";
import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import { z } from "zod";
import { issueCallToken } from "../../calls/call-token.ts";
import { endOnNode } from "../../calls/node-client.ts";
import {
	blockersOf,
	busyUsers,
	callFrame,
	endCall,
	endIfEmpty,
	liveNodeFor,
	loadCall,
	nodeUrlOf,
	type PickedNode,
	pickNode,
	tellParticipants,
} from "../../calls/service.ts";
import { iceServersWithHealth } from "../../calls/turn-health.ts";
import { assertNotBlocked, conversationForMember, notifyUsers, roomOf } from "../../conversations/service.ts";
import { callParticipants, calls } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { newId } from "../../lib/ids.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";
import type { AuthedEnv } from "../../types.ts";

const tags = ["Calls"];
const IdParam = z.object({ id: z.string().max(64) });

const start = createRoute({
	method: "post",
	path: "/v1/calls",
	tags,
	summary: "Start a call in a conversation; the other members are rung",
	...authed,
	request: { body: jsonBody(StartCallRequest) },
	responses: {
		201: jsonResponse(z.object({ call: Call, join: JoinInfo }), "Started"),
		...errorResponses(400, 401, 403, 404, 409, 503),
	},
});
const join = createRoute({
	method: "post",
	path: "/v1/calls/{id}/join",
	tags,
	summary: "Answer or rejoin: a fresh call token for the call's media node",
	description:
		"When the call's media node is dead (no heartbeat within MEDIA_NODE_STALE_SECONDS, draining, or gone), the call " +
		"moves to the least-loaded healthy node first (everyone joining at that moment lands on the same one) and the " +
		'participants get `{type:"call", event:"moved", nodeId}` on their user channel. 503 when no node can take it.',
	...authed,
	request: { params: IdParam },
	responses: {
		200: jsonResponse(z.object({ join: JoinInfo }), "Join"),
		...errorResponses(401, 403, 404, 409, 503),
	},
});
const action = (name: "decline" | "leave" | "end", summary: string) =>
	createRoute({
		method: "post",
		path: `/v1/calls/{id}/${name}`,
		tags,
		summary,
		...authed,
		request: { params: IdParam },
		responses: { ...NO_CONTENT, ...errorResponses(401, 404, 409) },
	});
const decline = action("decline", "Decline a ringing call");
const leave = action("leave", "Leave the call; the last one out ends it");
const end = action("end", "End the call for everyone");
const get = createRoute({
	method: "get",
	path: "/v1/calls/{id}",
	tags,
	summary: "The call and its participants",
	...authed,
	request: { params: IdParam },
	responses: { 200: jsonResponse(z.object({ call: Call }), "Call"), ...errorResponses(401, 404) },
});
const turn = createRoute({
	method: "get",
	path: "/v1/turn/credentials",
	tags,
	summary:
		'Ephemeral TURN REST credentials; STUN only when TURN is not configured or every media node finds it down (turn: "not_configured" / "unavailable")',
	...authed,
	responses: { 200: jsonResponse(TurnCredentials, "ICE servers"), ...errorResponses(401) },
});

async function joinInfo(c: Context<AuthedEnv>, callId: string, node: PickedNode) {
	const { config } = c.var;
	const [ice, token] = await Promise.all([
		iceServersWithHealth(c.var, c.var.auth.userId),
		issueCallToken(config.signingKeys, config.issuer, {
			userId: c.var.auth.userId,
			callId,
			permissions: ["publish", "subscribe", "screen"],
			requestId: c.var.requestId,
		}),
	]);
	return { url: node.url, token, iceServers: ice.iceServers, turn: ice.turn };
}

/** Tells the call's media node it ended (the request itself after the answer): the node then refuses the call's tokens. */
async function tellNodeEnded(c: Context<AuthedEnv>, nodeId: string, callId: string): Promise<void> {
	const { config, log, db, requestId } = c.var;
	const url = await nodeUrlOf(db, config, nodeId).catch(() => undefined);
	if (url) c.executionCtx.waitUntil(endOnNode(config, log, { id: nodeId, url }, callId, requestId));
}

/** The call, if the caller is a member of its conversation (404 otherwise). */
async function callForMember(c: Context<AuthedEnv>, callId: string) {
	const loaded = await loadCall(c.var.db, callId);
	if (!loaded) throw new ApiError(404, "NOT_FOUND", "No such call.");
	await conversationForMember(c.var.db, loaded.row.conversationId, c.var.auth.userId).catch(() => {
		throw new ApiError(404, "NOT_FOUND", "No such call.");
	});
	return loaded;
}

export const callRoutes = createRouter()
	.openapi(start, async (c) => {
		const me = c.var.auth.userId;
		const db = c.var.db;
		const body = c.req.valid("json");
		const { row: conversation, members } = await conversationForMember(db, body.conversationId, me);
		if (conversation.type === "direct") {
			const other = members.find((m) => m.userId !== me);
			if (other) await assertNotBlocked(db, me, other.userId);
		}
		if (members.length > c.var.config.calls.maxParticipants) {
			throw new ApiError(409, "CONFLICT", `Calls have at most ${c.var.config.calls.maxParticipants} participants.`);
		}
		const [live] = await db
			.select({ id: calls.id })
			.from(calls)
			.where(and(eq(calls.conversationId, conversation.id), eq(calls.state, "active")))
			.limit(1);
		if (live)
			throw new ApiError(409, "CONFLICT", "A call is already running in this conversation; join it.", {
				details: { callId: live.id },
			});
		const node = await pickNode(db, c.var.config);
		const everyoneElse = members.map((m) => m.userId).filter((id) => id !== me);
		const blockers = await blockersOf(db, me, everyoneElse);
		const others = everyoneElse.filter((id) => !blockers.has(id));
		const busy = await busyUsers(db, others);
		const callId = newId("call");
		await db.insert(calls).values({
			id: callId,
			conversationId: conversation.id,
			initiatorId: me,
			media: body.media,
			state: "ringing",
			nodeId: node.id,
		});
		await db.insert(callParticipants).values([
			{ callId, userId: me, state: "joined", joinedAt: new Date() },
			...others.map((userId) => ({
				callId,
				userId,
				state: busy.has(userId) ? ("busy" as const) : ("ringing" as const),
			})),
		]);
		const loaded = await loadCall(db, callId);
		if (!loaded) throw new Error("call vanished");
		const rung = others.filter((id) => !busy.has(id));
		await notifyUsers(c.env, rung, callFrame(loaded.call, "ring", me));
		for (const userId of busy) await notifyUsers(c.env, [me], callFrame(loaded.call, "busy", userId));
		// Offline callees get a push with no content but the call's id.
		await Promise.allSettled(
			rung.map((userId) =>
				c.env.NOTIFICATIONS.send({
					kind: "push",
					userId,
					conversationId: conversation.id,
					seq: 0,
					requestId: c.var.requestId,
					event: "call",
					callId,
				}),
			),
		);
		await roomOf(c.env, conversation.id).scheduleCallTimeout(
			callId,
			Date.now() + c.var.config.calls.ringSeconds * 1000,
		);
		return c.json({ call: loaded.call, join: await joinInfo(c, callId, node) }, 201);
	})
	.openapi(join, async (c) => {
		const { row, call } = await callForMember(c, c.req.valid("param").id);
		if (row.state !== "ringing" && row.state !== "active") throw new ApiError(409, "CONFLICT", "The call is over.");
		const db = c.var.db;
		const me = c.var.auth.userId;
		const count = call.participants.filter((p) => p.state === "joined" && p.userId !== me).length;
		if (count + 1 > c.var.config.calls.maxParticipants) {
			throw new ApiError(409, "CONFLICT", `Calls have at most ${c.var.config.calls.maxParticipants} participants.`);
		}
		const node = await liveNodeFor(db, c.var.config, row.id, row.nodeId);
		if (node.movedFrom) {
			c.var.log.warn("call moved off a dead media node", { callId: row.id, from: node.movedFrom, to: node.id });
			await tellParticipants(c.env, db, row.id, callFrame(call, "moved", me, { nodeId: node.id }));
		}
		await db
			.insert(callParticipants)
			.values({ callId: row.id, userId: me, state: "joined", joinedAt: new Date() })
			.onConflictDoUpdate({
				target: [callParticipants.callId, callParticipants.userId],
				set: { state: "joined", joinedAt: new Date(), leftAt: null },
			});
		if (row.state === "ringing" && me !== row.initiatorId) {
			await db.update(calls).set({ state: "active", answeredAt: new Date() }).where(eq(calls.id, row.id));
		}
		await tellParticipants(c.env, db, row.id, callFrame(call, "joined", me));
		return c.json({ join: await joinInfo(c, row.id, node) }, 200);
	})
	.openapi(decline, async (c) => {
		const { row, call } = await callForMember(c, c.req.valid("param").id);
		const db = c.var.db;
		const me = c.var.auth.userId;
		const [changed] = await db
			.update(callParticipants)
			.set({ state: "declined" })
			.where(
				and(
					eq(callParticipants.callId, row.id),
					eq(callParticipants.userId, me),
					eq(callParticipants.state, "ringing"),
				),
			)
			.returning();
		if (!changed) throw new ApiError(409, "CONFLICT", "This call is not ringing for you.");
		await tellParticipants(c.env, db, row.id, callFrame(call, "declined", me));
		const still = await db
			.select({ userId: callParticipants.userId })
			.from(callParticipants)
			.where(and(eq(callParticipants.callId, row.id), eq(callParticipants.state, "ringing")));
		if (still.length === 0 && row.state === "ringing") {
			await db
				.update(calls)
				.set({ state: "declined", endedAt: new Date(), endedReason: "declined" })
				.where(and(eq(calls.id, row.id), eq(calls.state, "ringing")));
			await tellParticipants(c.env, db, row.id, callFrame(call, "ended", me));
		}
		return c.body(null, 204);
	})
	.openapi(leave, async (c) => {
		const { row, call } = await callForMember(c, c.req.valid("param").id);
		const db = c.var.db;
		const me = c.var.auth.userId;
		const [changed] = await db
			.update(callParticipants)
			.set({ state: "left", leftAt: new Date() })
			.where(
				and(eq(callParticipants.callId, row.id), eq(callParticipants.userId, me), eq(callParticipants.state, "joined")),
			)
			.returning();
		if (!changed) throw new ApiError(409, "CONFLICT", "You are not in this call.");
		await tellParticipants(c.env, db, row.id, callFrame(call, "left", me));
		if (await endIfEmpty(c.env, db, row.id, "everyone_left")) await tellNodeEnded(c, row.nodeId, row.id);
		return c.body(null, 204);
	})
	.openapi(end, async (c) => {
		const { row } = await callForMember(c, c.req.valid("param").id);
		if (row.state !== "ringing" && row.state !== "active") throw new ApiError(409, "CONFLICT", "The call is over.");
		await endCall(c.env, c.var.db, row.id, "ended_by_participant", c.var.auth.userId);
		await tellNodeEnded(c, row.nodeId, row.id);
		return c.body(null, 204);
	})
	.openapi(get, async (c) => {
		const { call } = await callForMember(c, c.req.valid("param").id);
		return c.json({ call }, 200);
	})
	.openapi(turn, async (c) => c.json(await iceServersWithHealth(c.var, c.var.auth.userId), 200));
