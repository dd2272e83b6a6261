// Starts the database the workers under test reach through the Neon driver:
// embedded PGlite by default, or TEST_DATABASE_URL (a real Postgres) when set.
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startLocalDatabase } from "../../scripts/local/database.ts";
import { GENERATORS } from "../../scripts/local/secrets.ts";

declare module "vitest" {
	export interface ProvidedContext {
		databaseUrl: string;
		dbWsProxy: string;
		databaseKind: "embedded" | "postgres";
		secrets: Record<string, string>;
	}
}

export default async function setup(project: TestProject) {
	const db = await startLocalDatabase({
		databaseUrl: process.env.TEST_DATABASE_URL,
		migrationsDir: join(import.meta.dirname, "../../migrations"),
	});
	project.provide("databaseUrl", db.databaseUrl);
	project.provide("dbWsProxy", db.wsProxy);
	project.provide("databaseKind", db.kind);
	project.provide(
		"secrets",
		Object.fromEntries(Object.entries(GENERATORS).map(([name, generate]) => [name, generate()])),
	);
	return async () => {
		await db.close();
	};
}
