// The real stack for the call tests, on ports of its own: embedded Postgres,
// the api in `wrangler dev`, one media node process and a loopback coturn,
// all sharing freshly generated secrets. Child output goes to a log file.

import { createSocket } from "node:dgram";
import { createWriteStream, type WriteStream } from "node:fs";
import { createServer as createTcpServer } from "node:net";
import { join } from "node:path";
import { startCoturn } from "../../scripts/local/coturn.ts";
import { startLocalDatabase } from "../../scripts/local/database.ts";
import { ensureCoturn } from "../../scripts/local/install-coturn.ts";
import { start, stopAll, waitForHttp } from "../../scripts/local/processes.ts";
import { GENERATORS, type SecretName } from "../../scripts/local/secrets.ts";
import { startWranglerDev } from "../../scripts/local/wrangler.ts";

const ROOT = join(import.meta.dirname, "../..");

export interface Stack {
	apiUrl: string;
	mediaUrl: string;
	/** Issuer of the api's tokens (its PUBLIC_URL). */
	issuer: string;
	secrets: Record<SecretName, string>;
	turnPort: number;
	maxPeersPerCall: number;
	stop(): Promise<void>;
}

async function tcpFree(port: number): Promise<boolean> {
	const server = createTcpServer();
	return await new Promise((resolve) => {
		server.once("error", () => resolve(false));
		server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
	});
}

async function udpFree(port: number): Promise<boolean> {
	const socket = createSocket("udp4");
	return await new Promise((resolve) => {
		socket.once("error", () => resolve(false));
		socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
	});
}

/** The first `base` in [from, to) where `count` consecutive ports are free for TCP (and UDP when asked). */
async function freeRange(from: number, to: number, count: number, udp: boolean, taken: Set<number>): Promise<number> {
	for (let base = from; base + count <= to; base++) {
		let ok = true;
		for (let p = base; ok && p < base + count; p++) {
			ok = !taken.has(p) && (await tcpFree(p)) && (!udp || (await udpFree(p)));
		}
		if (ok) {
			for (let p = base; p < base + count; p++) taken.add(p);
			return base;
		}
	}
	throw new Error(`no ${count} free ports in ${from}-${to}`);
}

/** Routes the prefixed output of child processes ("[api] …") into a file; everything else stays on the console. */
export function captureChildOutput(path: string, names: string[]): WriteStream {
	const file = createWriteStream(path);
	const prefix = new RegExp(`^\\[(${names.join("|")})\\] `);
	for (const stream of [process.stdout, process.stderr]) {
		const write = stream.write.bind(stream) as (chunk: string | Uint8Array) => boolean;
		stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
			const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
			if (prefix.test(text)) return file.write(text);
			return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
		}) as typeof stream.write;
	}
	return file;
}

export async function startStack(options: { dataDir: string; maxPeersPerCall: number }): Promise<Stack> {
	const turnserver = ensureCoturn((line) => console.log(`[call e2e] ${line}`));
	const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([name, make]) => [name, make()])) as Record<
		SecretName,
		string
	>;
	const taken = new Set<number>();
	const apiPort = await freeRange(8900, 8990, 1, false, taken);
	const mediaPort = await freeRange(8900, 8990, 1, false, taken);
	const turnPort = await freeRange(3500, 3600, 1, true, taken);
	// WebRtcServer ports (one per worker) sit below the node's dynamic range (40100+); dev uses 40000-40001.
	const rtcPort = await freeRange(40010, 40100, 2, true, taken);
	const apiUrl = `http://127.0.0.1:${apiPort}`;
	const mediaUrl = `http://127.0.0.1:${mediaPort}`;

	startCoturn(turnserver, secrets.TURN_SECRET, join(options.dataDir, "coturn"), turnPort);
	const media = start("media", process.execPath, [join(ROOT, "media-node/src/main.ts")], {
		env: {
			...process.env,
			MEDIA_NODE_HOST: "127.0.0.1",
			MEDIA_NODE_PORT: String(mediaPort),
			MEDIA_RTC_PORT: String(rtcPort),
			MEDIA_WORKERS: "2",
			API_URL: apiUrl,
			MEDIA_API_ISSUER: apiUrl,
			MEDIA_NODE_SECRET: secrets.MEDIA_NODE_SECRET,
			MEDIA_NODE_ID: "e2e-media-1",
			MEDIA_MAX_PEERS_PER_CALL: String(options.maxPeersPerCall),
			MEDIA_HEARTBEAT_MS: "2000",
			LOG_LEVEL: "warn",
		},
	});
	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	const api = startWranglerDev({
		root: ROOT,
		port: apiPort,
		persistTo: join(options.dataDir, "wrangler"),
		vars: {
			...secrets,
			DATABASE_URL: db.databaseUrl,
			DB_WS_PROXY: db.wsProxy,
			MEDIA_NODE_URL: mediaUrl,
			PUBLIC_URL: apiUrl,
			TURN_URLS: [
				`stun:127.0.0.1:${turnPort}`,
				`turn:127.0.0.1:${turnPort}?transport=udp`,
				`turn:127.0.0.1:${turnPort}?transport=tcp`,
			].join(","),
			LOG_LEVEL: "warn",
		},
	});
	const stop = async () => {
		await stopAll();
		await db.close();
	};
	const [apiUp, mediaUp] = await Promise.all([
		waitForHttp(`${apiUrl}/health`, 60_000),
		waitForHttp(`${mediaUrl}/health`, 30_000),
	]);
	if (!apiUp || !mediaUp || api.child.exitCode !== null || media.child.exitCode !== null) {
		await stop();
		throw new Error(`stack did not start: api ${apiUp ? "up" : "down"}, media node ${mediaUp ? "up" : "down"}`);
	}
	return { apiUrl, mediaUrl, issuer: apiUrl, secrets, turnPort, maxPeersPerCall: options.maxPeersPerCall, stop };
}
