// Media node entry point: `node src/main.ts` (Node >= 22.18, type stripping).
//
// Starts the mediasoup worker pool and the HTTP server, logs JSON lines to
// stdout, and on SIGINT/SIGTERM shuts down gracefully (HTTP server, then
// workers) and exits 0. A second signal, or a shutdown that takes longer than
// SHUTDOWN_TIMEOUT_MS, exits 1 at once.

import * as mediasoup from "mediasoup";
import type { MediaNodeConfig } from "./config.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { Logger } from "./Logger.ts";
import { MediaNodeServer } from "./server.ts";
import { WorkerPool } from "./WorkerPool.ts";

export const SHUTDOWN_TIMEOUT_MS = 10_000;
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const;

// mediasoup's own Node-side logs (it uses the `debug` module by default) go
// through our logger instead, so every line on stdout is JSON.
function routeMediasoupLogs(logger: Logger): void {
	const log = logger.child({ component: "mediasoup" });

	mediasoup.setLogEventListeners({
		...(logger.isLevelEnabled("debug")
			? { ondebug: (namespace: string, msg: string) => log.debug(msg, { namespace }) }
			: {}),
		onwarn: (namespace: string, msg: string) => log.warn(msg, { namespace }),
		onerror: (namespace: string, msg: string, error?: Error) =>
			log.error(msg, error ? { namespace, error } : { namespace }),
	});
}

function readConfig(): MediaNodeConfig {
	try {
		return loadConfig();
	} catch (error) {
		const logger = Logger.create();

		if (error instanceof ConfigError) {
			logger.error("invalid configuration", { issues: error.issues });
		} else {
			logger.error("cannot load configuration", { error });
		}
		process.exit(1);
	}
}

async function main(): Promise<void> {
	const config = readConfig();
	const logger = Logger.create({ level: config.logLevel });

	process.on("uncaughtException", (error) => {
		logger.error("uncaught exception", { error });
		process.exit(1);
	});
	process.on("unhandledRejection", (reason) => {
		logger.error("unhandled rejection", { error: reason });
		process.exit(1);
	});

	routeMediasoupLogs(logger);

	const pool = await WorkerPool.create({
		size: config.workers,
		logger,
		workerLogLevel: config.logLevel === "debug" ? "debug" : "warn",
	});

	let server: MediaNodeServer;

	try {
		server = await MediaNodeServer.create({
			host: config.http.host,
			port: config.http.port,
			health: pool,
			logger,
		});
	} catch (error) {
		logger.error("cannot start http server", { error, host: config.http.host, port: config.http.port });
		await pool.close();
		process.exit(1);
	}

	let shuttingDown = false;

	const shutdown = async (signal: string): Promise<void> => {
		if (shuttingDown) {
			logger.warn("second signal during shutdown, exiting now", { signal });
			process.exit(1);
		}
		shuttingDown = true;
		logger.info("shutting down", { signal });

		setTimeout(() => {
			logger.error("shutdown timed out", { timeoutMs: SHUTDOWN_TIMEOUT_MS });
			process.exit(1);
		}, SHUTDOWN_TIMEOUT_MS).unref();

		await server.close();
		await pool.close();
		logger.info("shutdown complete");
		process.exit(0);
	};

	for (const signal of SHUTDOWN_SIGNALS) {
		process.on(signal, () => {
			shutdown(signal).catch((error: unknown) => {
				logger.error("shutdown failed", { error });
				process.exit(1);
			});
		});
	}

	logger.info("media node listening", {
		host: server.address.address,
		port: server.port,
		workers: pool.liveWorkerCount,
		rtc: config.rtc,
		pid: process.pid,
	});
}

await main();
