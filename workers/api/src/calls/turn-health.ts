// The media nodes' TURN probe reports (media_nodes.turn, from their heartbeats)
// and the ICE servers answered with them: call start/join and GET /v1/turn/credentials.
import type { NodeTurnReport } from "@secureconnect/protocol";
import { and, gt, isNotNull } from "drizzle-orm";
import type { Config } from "../config/config.ts";
import type { Database } from "../db/client.ts";
import { mediaNodes } from "../db/schema/index.ts";
import type { Logger } from "../lib/logger.ts";
import { iceServersFor, turnConfigured } from "./turn.ts";

/** TURN reports of nodes whose last heartbeat is fresh (within MEDIA_NODE_STALE_SECONDS). */
export async function freshTurnReports(db: Database, staleMs: number, now = Date.now()): Promise<NodeTurnReport[]> {
	const rows = await db
		.select({ turn: mediaNodes.turn })
		.from(mediaNodes)
		.where(and(isNotNull(mediaNodes.turn), gt(mediaNodes.lastHeartbeatAt, new Date(now - staleMs))));
	return rows.flatMap((row) => (row.turn && Array.isArray(row.turn.servers) ? [row.turn as NodeTurnReport] : []));
}

/**
 * iceServersFor with the nodes' fresh TURN reports. Reading them never fails the
 * request: without them the answer is what it was before probes existed.
 */
export async function iceServersWithHealth(
	ctx: { config: Config; db: Database; log: Logger },
	userId: string,
): Promise<Awaited<ReturnType<typeof iceServersFor>>> {
	const { config, db, log } = ctx;
	let reports: NodeTurnReport[] = [];
	if (turnConfigured(config.turn)) {
		try {
			reports = await freshTurnReports(db, config.calls.nodeStaleSeconds * 1000);
		} catch (error) {
			log.warn("cannot read the media nodes' TURN reports; offering TURN as configured", { error });
		}
	}
	const ice = await iceServersFor(config.turn, userId, { reports });
	if (ice.turn === "unavailable") {
		log.warn("TURN is down according to every fresh media node report; answering STUN only", {
			servers: config.turn.urls.length,
		});
	}
	return ice;
}
