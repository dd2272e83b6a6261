// Applies migrations/ through the same driver the worker uses in production
// (Neon serverless over WebSocket), locally via the proxy, or straight to Neon.
import { createRequire } from "node:module";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import { migrate as drizzleMigrate } from "drizzle-orm/neon-serverless/migrator";

export interface MigrateOptions {
	databaseUrl: string;
	/** host:port of a local proxy; omitted for Neon itself. */
	wsProxy?: string;
	migrationsDir: string;
}

export async function migrate(options: MigrateOptions): Promise<void> {
	neonConfig.webSocketConstructor = createRequire(import.meta.url)("ws");
	if (options.wsProxy) {
		const proxy = options.wsProxy;
		neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
		neonConfig.useSecureWebSocket = false;
		neonConfig.pipelineConnect = false;
		neonConfig.pipelineTLS = false;
	}
	const pool = new Pool({ connectionString: options.databaseUrl, max: 1 });
	pool.on("error", () => {});
	try {
		await drizzleMigrate(drizzle(pool), { migrationsFolder: options.migrationsDir });
	} finally {
		await pool.end();
	}
}

if (import.meta.main) {
	const databaseUrl = process.env.DATABASE_URL;
	if (!databaseUrl) {
		console.error("usage: DATABASE_URL=postgres://… [DB_WS_PROXY=host:port] npm run db:migrate");
		process.exit(2);
	}
	const { join } = await import("node:path");
	await migrate({
		databaseUrl,
		wsProxy: process.env.DB_WS_PROXY,
		migrationsDir: join(import.meta.dirname, "../../migrations"),
	});
	console.log("migrations applied");
}
