// The real stack for the load test and the fuzzer, as bench/realtime.ts runs it: the embedded
// database (PGlite behind the Neon WebSocket proxy, in this process), fresh
// secrets, and the api with its Durable Objects in `wrangler dev` (workerd).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalDatabase } from "../scripts/local/database.ts";
import { freePort } from "../scripts/local/ports.ts";
import { stopAll, waitForHttp } from "../scripts/local/processes.ts";
import { GENERATORS } from "../scripts/local/secrets.ts";
import { cpuSeconds, runtimeEntry, workerdProcesses } from "../scripts/local/workerd-processes.ts";
import { startWranglerDev } from "../scripts/local/wrangler.ts";

const ROOT = join(import.meta.dirname, "..");

export interface Stack {
	/** wrangler dev's address (its reload proxy in front of the runtime). */
	api: string;
	/** The workerd runtime's own entry, past wrangler's proxy (which production lacks): faster for request-bound runs. */
	runtime: string;
	/** How to reach the database the api uses (scripts/backup/postgres.ts openPool takes this). */
	database: { databaseUrl: string; wsProxy: string };
	/** True when wrangler dev restarted workerd since the start (it does when a source file changes). */
	restarted(): boolean;
	/** CPU seconds used so far by the workerd processes (the runtime and wrangler's proxy). */
	serverCpuSeconds(): number;
	stop(): Promise<void>;
}

/** wrangler.toml serves web/dist as static assets: `wrangler dev` refuses to start without it. */
function ensureWebBuild(): void {
	if (existsSync(join(ROOT, "web/dist"))) return;
	spawnSync(process.execPath, [join(ROOT, "scripts/build-web.ts")], { cwd: ROOT, stdio: "inherit" });
}

/** The live workerd processes below `root` (the runtime and wrangler's proxy), in pid order. */
function workerdPids(root: number): number[] {
	return [...workerdProcesses(root).keys()].sort((x, y) => x - y);
}

/**
 * Where wrangler dev keeps the Durable Objects' SQLite files: tmpfs when the
 * machine has one. workerd syncs every commit to disk, and on this shared VM's
 * disk that alone made acks seconds late (200 sockets, 40 msg/s: ack p50 8.8 s
 * on disk, 8 ms on tmpfs), which measures the disk, not the product; a deployed
 * Durable Object's storage is not a local disk either. `--persist-to` overrides.
 */
export function defaultPersistRoot(): string {
	return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

/**
 * Starts the stack. `vars` are passed to the Worker on top of wrangler.toml's
 * [vars] and the fresh secrets (the load test keeps the product's limits).
 */
export async function startStack(
	vars: Record<string, string>,
	persistRoot: string,
	log: (line: string) => void,
	/** Prefixes wrangler's output lines and names the state folder. */
	name = "load",
): Promise<Stack> {
	ensureWebBuild();
	const dataDir = mkdtempSync(join(persistRoot, `sc-${name}-`));
	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	const cleanup = async () => {
		await stopAll();
		await db.close();
		rmSync(dataDir, { recursive: true, force: true });
	};
	try {
		const port = await freePort();
		const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([name, generate]) => [name, generate()]));
		const wrangler = startWranglerDev({
			localObservability: false,
			root: ROOT,
			port,
			persistTo: join(dataDir, "wrangler"),
			name: `${name}-api`,
			vars: { ...secrets, DATABASE_URL: db.databaseUrl, DB_WS_PROXY: db.wsProxy, LOG_LEVEL: "error", ...vars },
		});
		const api = `http://127.0.0.1:${port}`;
		const t0 = performance.now();
		if (!(await waitForHttp(`${api}/health`, 90_000))) throw new Error("the api did not answer /health within 90 s");
		const root = wrangler.child.pid as number;
		const initial = workerdPids(root).join(",");
		log(
			`stack: api on ${api} (embedded database, wrangler dev, Durable Object storage in ${dataDir}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
		);
		return {
			api,
			runtime: await runtimeEntry(workerdPids(root)),
			database: { databaseUrl: db.databaseUrl, wsProxy: db.wsProxy },
			restarted: () => workerdPids(root).join(",") !== initial,
			serverCpuSeconds: () => cpuSeconds(workerdPids(root)),
			stop: cleanup,
		};
	} catch (error) {
		await cleanup();
		throw error;
	}
}
