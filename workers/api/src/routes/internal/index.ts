// Media node → api: signed heartbeats (the node registry, with each node's TURN
// probe results: calls/turn-health.ts) and room events.
import { NodeEvents, NodeHeartbeat } from "@secureconnect/protocol";
import { and, eq, inArray } from "drizzle-orm";
import type { Context } from "hono";
import { verifyNodeRequest } from "../../calls/node-signature.ts";
import { callFrame, endIfEmpty, loadCall, tellParticipants } from "../../calls/service.ts";
import { callParticipants, calls, mediaNodes } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { createRouter } from "../../openapi.ts";
import type { AppEnv } from "../../types.ts";

async function signedBody(c: Context<AppEnv>): Promise<unknown> {
	const body = await c.req.text();
	const ok = await verifyNodeRequest(
		c.var.config.mediaNodeSecret,
		c.req.header("x-sc-timestamp"),
		c.req.header("x-sc-signature"),
		body,
	);
	if (!ok) throw new ApiError(401, "UNAUTHORIZED", "Bad or missing media node signature.");
	try {
		return JSON.parse(body);
	} catch {
		throw new ApiError(400, "MALFORMED_JSON", "The request body is not valid JSON.");
	}
}

export const internalRoutes = createRouter()
	.post("/internal/media-nodes/heartbeat", async (c) => {
		const parsed = NodeHeartbeat.safeParse(await signedBody(c));
		if (!parsed.success)
			throw new ApiError(400, "VALIDATION_FAILED", "Invalid heartbeat.", { details: parsed.error.issues });
		const hb = parsed.data;
		const values = {
			url: hb.url,
			region: hb.region,
			capacity: hb.capacity,
			calls: hb.load.calls,
			peers: hb.load.peers,
			draining: hb.draining ? 1 : 0,
			// A node that stops probing (or an older node) clears its last report.
			turn: hb.turn ?? null,
			lastHeartbeatAt: new Date(),
		};
		await c.var.db
			.insert(mediaNodes)
			.values({ id: hb.nodeId, ...values })
			.onConflictDoUpdate({ target: mediaNodes.id, set: values });
		return c.body(null, 204);
	})
	.post("/internal/media-nodes/events", async (c) => {
		const parsed = NodeEvents.safeParse(await signedBody(c));
		if (!parsed.success)
			throw new ApiError(400, "VALIDATION_FAILED", "Invalid events.", { details: parsed.error.issues });
		const db = c.var.db;
		for (const event of parsed.data.events) {
			const loaded = await loadCall(db, event.callId);
			if (!loaded || (loaded.row.nodeId !== parsed.data.nodeId && loaded.row.nodeId !== "static")) continue;
			if (event.type === "participant.left" && event.userId) {
				const [left] = await db
					.update(callParticipants)
					.set({ state: "left", leftAt: new Date() })
					.where(
						and(
							eq(callParticipants.callId, event.callId),
							eq(callParticipants.userId, event.userId),
							eq(callParticipants.state, "joined"),
						),
					)
					.returning();
				if (left) {
					await tellParticipants(c.env, db, event.callId, callFrame(loaded.call, "left", event.userId));
					await endIfEmpty(c.env, db, event.callId, "everyone_left");
				}
			}
			if (event.type === "call.ended") {
				await db
					.update(calls)
					.set({ state: "ended", endedAt: new Date(), endedReason: "media_node" })
					.where(and(eq(calls.id, event.callId), inArray(calls.state, ["ringing", "active"])));
			}
			c.var.log.info("media node event", { type: event.type, callId: event.callId, nodeId: parsed.data.nodeId });
		}
		return c.body(null, 204);
	});
