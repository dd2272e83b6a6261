// Media node entry point: `node src/main.ts` (Node >= 22.18, type stripping).
//
// Starts the media node (MediaNode.ts), logs JSON lines to stdout, and on
// SIGINT/SIGTERM drains gracefully (no new calls, peers told, final heartbeat
// with draining:true, up to MEDIA_DRAIN_TIMEOUT_MS for calls to end, then
// workers closed) and exits 0. A second signal, or a shutdown that takes
// SHUTDOWN_GRACE_MS longer than the drain timeout, exits 1 at once.

import * as mediasoup from "mediasoup";
import type { MediaNodeConfig } from "./config.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { Logger } from "./Logger.ts";
import { MediaNode } from "./MediaNode.ts";

/** Time beyond the drain timeout that closing may take before the process gives up. */
export const SHUTDOWN_GRACE_MS = 15_000;
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

	let node: MediaNode;

	try {
		node = await MediaNode.create({ config, logger });
	} catch (error) {
		logger.error("cannot start media node", { error, host: config.http.host, port: config.http.port });
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

		const timeoutMs = config.limits.drainTimeoutMs + SHUTDOWN_GRACE_MS;

		setTimeout(() => {
			logger.error("shutdown timed out", { timeoutMs });
			process.exit(1);
		}, timeoutMs).unref();

		await node.drain();
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

	logger.info("media node listening", node.describeStartup());
}

await main();
