// Starts the database the workers under test reach through the Neon driver:
// embedded PGlite by default, or TEST_DATABASE_URL (a real Postgres) when set.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildWeb, WEB_DIST } from "../../scripts/build-web.ts";
import { startLocalDatabase } from "../../scripts/local/database.ts";
import { startFakeProviders } from "../../scripts/local/fake-providers.ts";
import { GENERATORS } from "../../scripts/local/secrets.ts";

declare module "vitest" {
	export interface ProvidedContext {
		databaseUrl: string;
		dbWsProxy: string;
		databaseKind: "embedded" | "postgres";
		secrets: Record<string, string>;
		/** Push provider settings pointing at the local fakes (scripts/local/fake-providers.ts). */
		notificationBindings: Record<string, string>;
	}
}

export default async function setup(project: TestProject) {
	// The Worker serves web/dist as its static assets (wrangler.toml [assets]).
	if (!existsSync(join(WEB_DIST, "index.html"))) await buildWeb();
	const db = await startLocalDatabase({
		databaseUrl: process.env.TEST_DATABASE_URL,
		migrationsDir: join(import.meta.dirname, "../../migrations"),
	});
	project.provide("databaseUrl", db.databaseUrl);
	project.provide("dbWsProxy", db.wsProxy);
	project.provide("databaseKind", db.kind);
	const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([name, generate]) => [name, generate()]));
	project.provide("secrets", secrets);
	const fakes = await startFakeProviders({ mediaNodeSecret: secrets.MEDIA_NODE_SECRET ?? "" });
	project.provide("notificationBindings", fakes.bindings);
	return async () => {
		await fakes.close();
		await db.close();
	};
}
