// The local database: embedded PGlite by default, or any real Postgres given by
// DATABASE_URL, always reached through the Neon-compatible WebSocket proxy.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { migrate } from "./migrate.ts";
import { freePort } from "./ports.ts";
import { startWsProxy, type WsProxy } from "./ws-proxy.ts";

export interface LocalDatabaseOptions {
	/** A real Postgres to use instead of the embedded one. */
	databaseUrl?: string | undefined;
	/** Folder for the embedded database; omitted means in memory. */
	dataDir?: string | undefined;
	proxyPort?: number;
	migrationsDir: string;
}

export interface LocalDatabase {
	/** What the worker gets as DATABASE_URL. */
	databaseUrl: string;
	/** What the worker gets as DB_WS_PROXY. */
	wsProxy: string;
	kind: "embedded" | "postgres";
	close(): Promise<void>;
}

/** PGlite runs one backend and queues queries; every concurrent Worker request holds its own connection. */
const EMBEDDED_MAX_CONNECTIONS = 1000;

export async function startLocalDatabase(options: LocalDatabaseOptions): Promise<LocalDatabase> {
	let proxy: WsProxy;
	let stopBackend = async (): Promise<void> => {};
	let databaseUrl: string;
	let kind: LocalDatabase["kind"];

	if (options.databaseUrl) {
		const url = new URL(options.databaseUrl);
		proxy = await startWsProxy({
			target: { host: url.hostname, port: Number(url.port || 5432) },
			...(options.proxyPort !== undefined && { port: options.proxyPort }),
		});
		databaseUrl = options.databaseUrl;
		kind = "postgres";
	} else {
		const { PGlite } = await import("@electric-sql/pglite");
		const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
		if (options.dataDir) mkdirSync(dirname(options.dataDir), { recursive: true });
		const db = await PGlite.create(options.dataDir);
		const port = await freePort();
		const server = new PGLiteSocketServer({
			db,
			host: "127.0.0.1",
			port,
			maxConnections: EMBEDDED_MAX_CONNECTIONS,
		});
		await server.start();
		stopBackend = async () => {
			await server.stop();
			await db.close();
		};
		proxy = await startWsProxy({
			target: { host: "127.0.0.1", port },
			...(options.proxyPort !== undefined && { port: options.proxyPort }),
		});
		// PGlite ignores the credentials; the URL only has to be well formed.
		databaseUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
		kind = "embedded";
	}

	const local: LocalDatabase = {
		databaseUrl,
		wsProxy: proxy.address,
		kind,
		close: async () => {
			await proxy.close();
			await stopBackend();
		},
	};
	try {
		await migrate({ databaseUrl, wsProxy: proxy.address, migrationsDir: options.migrationsDir });
	} catch (error) {
		await local.close();
		throw error;
	}
	return local;
}
