import { loadConfig } from "../config/config.ts";
import { openDatabase } from "../db/client.ts";
import type { Env } from "../env.ts";
import { rootLogger } from "../lib/logger.ts";
import { staleNodes } from "./service.ts";

/** Cron: logs every media node that stopped sending heartbeats (new calls already avoid it). */
export async function reportStaleNodes(env: Env): Promise<number> {
	const config = await loadConfig(env);
	const handle = openDatabase(config.database);
	try {
		const stale = await staleNodes(handle.db);
		for (const node of stale) {
			rootLogger.warn("media node stopped beating", {
				nodeId: node.id,
				lastHeartbeatAt: node.lastHeartbeatAt.toISOString(),
			});
		}
		return stale.length;
	} finally {
		await handle.close();
	}
}
