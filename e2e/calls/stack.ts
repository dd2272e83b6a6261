// The real stack for the call tests, on ports of its own: embedded Postgres,
// the api in `wrangler dev`, one media node process (a case may start more)
// and a loopback coturn, all sharing freshly generated secrets. Child output
// goes to a log file.

import { createSocket } from "node:dgram";
import { createWriteStream, type WriteStream } from "node:fs";
import { createServer as createTcpServer } from "node:net";
import { join } from "node:path";
import { startCoturn } from "../../scripts/local/coturn.ts";
import { startLocalDatabase } from "../../scripts/local/database.ts";
import { ensureCoturn } from "../../scripts/local/install-coturn.ts";
import { type Managed, start, stopAll, waitForHttp } from "../../scripts/local/processes.ts";
import { GENERATORS, type SecretName } from "../../scripts/local/secrets.ts";
import { startWranglerDev } from "../../scripts/local/wrangler.ts";

const ROOT = join(import.meta.dirname, "../..");

/** Heartbeat period of the stack's media nodes, and how long the api waits before it calls a silent node dead. */
export const MEDIA_HEARTBEAT_MS = 2_000;
export const MEDIA_NODE_STALE_SECONDS = 6;

export interface MediaNode {
	id: string;
	region: string;
	/** http://127.0.0.1:<port> */
	url: string;
	/** What the node registers as its `join.url`. */
	wsUrl: string;
	process: Managed;
}

export interface Stack {
	apiUrl: string;
	mediaUrl: string;
	/** The media node every case uses (`mediaUrl`). */
	media: MediaNode;
	/** Starts one more media node on ports of its own, registered with the same api; resolves once it answers /health. */
	startMediaNode(id: string, region: string): Promise<MediaNode>;
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
	const turnPort = await freeRange(3500, 3600, 1, true, taken);
	const apiUrl = `http://127.0.0.1:${apiPort}`;

	/** A media node process: HTTP/signaling port, WebRtcServer ports (one per worker) of its own. */
	const launchMediaNode = async (id: string, region: string): Promise<MediaNode> => {
		const port = await freeRange(8900, 8990, 1, false, taken);
		// WebRtcServer ports sit below the node's dynamic range (40100+); dev uses 40000-40001.
		const rtcPort = await freeRange(40010, 40100, 2, true, taken);
		const child = start("media", process.execPath, [join(ROOT, "media-node/src/main.ts")], {
			env: {
				...process.env,
				MEDIA_NODE_HOST: "127.0.0.1",
				MEDIA_NODE_PORT: String(port),
				MEDIA_RTC_PORT: String(rtcPort),
				MEDIA_WORKERS: "2",
				API_URL: apiUrl,
				MEDIA_API_ISSUER: apiUrl,
				MEDIA_NODE_SECRET: secrets.MEDIA_NODE_SECRET,
				MEDIA_NODE_ID: id,
				MEDIA_REGION: region,
				MEDIA_MAX_PEERS_PER_CALL: String(options.maxPeersPerCall),
				MEDIA_HEARTBEAT_MS: String(MEDIA_HEARTBEAT_MS),
				LOG_LEVEL: "warn",
			},
		});
		const url = `http://127.0.0.1:${port}`;
		return { id, region, url, wsUrl: `ws://127.0.0.1:${port}/v1/rtc`, process: child };
	};

	startCoturn(turnserver, secrets.TURN_SECRET, join(options.dataDir, "coturn"), turnPort);
	const mediaNode = await launchMediaNode("e2e-media-1", "local-a");
	const mediaUrl = mediaNode.url;
	const media = mediaNode.process;
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
			MEDIA_NODE_STALE_SECONDS: String(MEDIA_NODE_STALE_SECONDS),
			LOG_LEVEL: "warn",
		},
	});
	const startMediaNode = async (id: string, region: string): Promise<MediaNode> => {
		const node = await launchMediaNode(id, region);
		if (!(await waitForHttp(`${node.url}/health`, 30_000)) || node.process.child.exitCode !== null) {
			throw new Error(`media node ${id} did not start`);
		}
		return node;
	};
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
	return {
		apiUrl,
		mediaUrl,
		media: mediaNode,
		startMediaNode,
		issuer: apiUrl,
		secrets,
		turnPort,
		maxPeersPerCall: options.maxPeersPerCall,
		stop,
	};
}
