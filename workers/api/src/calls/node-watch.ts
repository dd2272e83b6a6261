import { and, inArray, lt } from "drizzle-orm";
import { loadConfig } from "../config/config.ts";
import { type Database, openDatabase } from "../db/client.ts";
import { calls, mediaNodes } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { rootLogger } from "../lib/logger.ts";
import { endCall, staleNodes } from "./service.ts";

/**
 * A call still pinned to a node silent for this long was moved by nobody: no
 * participant came back through POST /v1/calls/{id}/join (which moves calls
 * off dead nodes). It is over; ending it frees its participants, who would
 * otherwise stay "busy" for new calls.
 */
export const STRANDED_CALL_MS = 5 * 60_000;

/** Cron: logs every media node that stopped sending heartbeats (new calls already avoid it) and ends stranded calls. */
export async function reportStaleNodes(env: Env): Promise<number> {
	const config = await loadConfig(env);
	const handle = openDatabase(config.database);
	try {
		const stale = await staleNodes(handle.db, Date.now(), config.calls.nodeStaleSeconds * 1000);
		for (const node of stale) {
			rootLogger.warn("media node stopped beating", {
				nodeId: node.id,
				lastHeartbeatAt: node.lastHeartbeatAt.toISOString(),
			});
		}
		const ended = await endStrandedCalls(env, handle.db);
		if (ended.length > 0) rootLogger.warn("ended calls stranded on dead media nodes", { calls: ended });
		return stale.length;
	} finally {
		await handle.close();
	}
}

/** Ends live calls whose node has been silent for STRANDED_CALL_MS; answers their ids. */
export async function endStrandedCalls(env: Env, db: Database, now = Date.now()): Promise<string[]> {
	const dead = db
		.select({ id: mediaNodes.id })
		.from(mediaNodes)
		.where(lt(mediaNodes.lastHeartbeatAt, new Date(now - STRANDED_CALL_MS)));
	const stranded = await db
		.select({ id: calls.id })
		.from(calls)
		.where(and(inArray(calls.state, ["ringing", "active"]), inArray(calls.nodeId, dead)))
		.limit(100);
	for (const { id } of stranded) await endCall(env, db, id, "media_node_lost");
	return stranded.map((c) => c.id);
}
