import type { CheckState } from "@secureconnect/protocol";
import { sql } from "drizzle-orm";
import { DEFAULT_CHECK_TIMEOUT_MS, loadConfig } from "../../config/config.ts";
import { openDatabase } from "../../db/client.ts";
import type { Env } from "../../env.ts";
import { withTimeout } from "../../lib/timeout.ts";

type Check = (env: Env) => Promise<CheckState>;

const ok = async (work: Promise<unknown>, what: string): Promise<CheckState> => {
	try {
		await withTimeout(what, DEFAULT_CHECK_TIMEOUT_MS, work);
		return "ok";
	} catch {
		return "failing";
	}
};

const checks: Record<string, Check> = {
	config: async (env) => ok(loadConfig(env), "config"),
	database: async (env) => {
		if (!env.DATABASE_URL) return "failing";
		const handle = openDatabase({
			url: env.DATABASE_URL,
			wsProxy: env.DB_WS_PROXY,
			timeoutMs: DEFAULT_CHECK_TIMEOUT_MS,
		});
		try {
			return await ok(handle.db.execute(sql`select 1`), "database");
		} finally {
			void handle.close();
		}
	},
	storage: async (env) => ok(env.FILES.head("readiness-probe"), "storage"),
	realtime: async (env) => ok(env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName("readiness-probe")).ping(), "realtime"),
	mediaNode: async (env) => {
		if (!env.MEDIA_NODE_URL) return "not_configured";
		return ok(
			fetch(new URL("/health", env.MEDIA_NODE_URL)).then((r) => {
				if (!r.ok) throw new Error(`media node answered ${r.status}`);
			}),
			"media node",
		);
	},
};

export async function runReadinessChecks(env: Env): Promise<Record<string, CheckState>> {
	const entries = await Promise.all(
		Object.entries(checks).map(async ([name, check]) => [name, await check(env)] as const),
	);
	return Object.fromEntries(entries);
}
