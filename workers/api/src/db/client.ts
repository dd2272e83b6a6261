// Postgres through the Neon serverless driver in every environment; locally
// DB_WS_PROXY points it at the WebSocket proxy in front of PGlite or Postgres.
import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";

/**
 * Queries are built from the tables in ./schema; the relational query API
 * (db.query.*) is not used, so no schema is passed: drizzle() would derive
 * its relations config on every call, i.e. on every request.
 */
export type Database = NeonDatabase;

export interface DatabaseOptions {
	url: string;
	wsProxy: string | undefined;
	timeoutMs: number;
	onError?: (error: Error) => void;
}

export interface DatabaseHandle {
	db: Database;
	close(): Promise<void>;
}

export function openDatabase(options: DatabaseOptions): DatabaseHandle {
	if (options.wsProxy) {
		const proxy = options.wsProxy;
		neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
		neonConfig.useSecureWebSocket = false;
		neonConfig.pipelineConnect = false;
		neonConfig.pipelineTLS = false;
	}
	// A Worker cannot keep sockets between requests: one small pool per request.
	const pool = new Pool({
		connectionString: options.url,
		max: 2,
		connectionTimeoutMillis: options.timeoutMs,
		query_timeout: options.timeoutMs,
		idle_in_transaction_session_timeout: options.timeoutMs * 2,
	});
	// workerd drops the socket when the request ends; unhandled, that error is fatal.
	pool.on("error", (error: Error) => options.onError?.(error));
	return {
		db: drizzle(pool),
		close: () => pool.end().catch(() => {}),
	};
}
