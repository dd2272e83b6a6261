// `npm run dev`: the whole system on embedded defaults, stopped together by one Ctrl-C.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { buildWeb } from "./build-web.ts";
import { findTurnserver, startCoturn, TURN_PORT } from "./local/coturn.ts";
import { startLocalDatabase } from "./local/database.ts";
import { writeDevEndpoints } from "./local/endpoints.ts";
import { type FakeProviders, startFakeProviders } from "./local/fake-providers.ts";
import { ensureCoturn } from "./local/install-coturn.ts";
import { start, stopAll, waitForHttp } from "./local/processes.ts";
import { ensureDevVars } from "./local/secrets.ts";
import { startWranglerDev } from "./local/wrangler.ts";

const ROOT = join(import.meta.dirname, "..");
const DATA = join(ROOT, ".data");
const API_PORT = Number(process.env.PORT ?? 8787);
const MEDIA_PORT = Number(process.env.MEDIA_NODE_PORT ?? 8790);
const STARTUP_TIMEOUT_MS = 60_000;
const PARENT_CHECK_MS = 1_000;

const log = (msg: string) => process.stdout.write(`[dev] ${msg}\n`);

let stopping = false;
let pushStandIns: FakeProviders | undefined;
async function shutdown(code: number, closeDb?: () => Promise<void>): Promise<never> {
	if (!stopping) {
		stopping = true;
		log("stopping…");
		await stopAll();
		await pushStandIns?.close();
		await closeDb?.();
	}
	process.exit(code);
}

/** The turnserver binary; installs coturn with apt when missing, and gives up (STUN only) when it cannot. */
function turnserverOrInstall(): string | undefined {
	const found = findTurnserver();
	if (found) return found;
	log("coturn is not installed: installing it with apt-get (once)…");
	try {
		return ensureCoturn(log);
	} catch (error) {
		log(
			`could not install coturn (${(error as Error).message}), so calls use host/STUN candidates only and TURN credentials are empty. Install it with: apt-get install -y coturn`,
		);
		return undefined;
	}
}

/**
 * The api's settings for the push stand-ins (not the fakes' own TEST_* control values), except
 * for a provider that .dev.vars configures itself (FCM_*, APNS_* or VAPID_*): that one stays real.
 */
function pushBindings(fakes: FakeProviders, devVars: Map<string, string>): Record<string, string> {
	const own = ["FCM_", "APNS_", "VAPID_"].filter((prefix) => [...devVars.keys()].some((k) => k.startsWith(prefix)));
	return Object.fromEntries(
		Object.entries(fakes.bindings).filter(
			([name]) => !name.startsWith("TEST_") && !own.some((prefix) => name.startsWith(prefix)),
		),
	);
}

async function main(): Promise<void> {
	mkdirSync(DATA, { recursive: true });
	const vars = ensureDevVars(join(ROOT, ".dev.vars"));
	// Before anything else runs: installing blocks this process (apt-get, synchronously).
	const turnserver = turnserverOrInstall();

	const db = await startLocalDatabase({
		databaseUrl: process.env.DATABASE_URL,
		dataDir: join(DATA, "pglite"),
		migrationsDir: join(ROOT, "migrations"),
	});
	log(`database: ${db.kind === "embedded" ? "embedded PGlite in .data/pglite" : "DATABASE_URL"}, migrations applied`);
	const closeDb = () => db.close();
	for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void shutdown(0, closeDb));
	// `npm run dev` runs this under `sh -c`; a SIGTERM to npm ends npm and the shell but not this
	// process. When the process that started it is gone, stop everything rather than hold the ports.
	const parent = process.ppid;
	setInterval(() => {
		if (process.ppid !== parent) {
			log("the process that started this one has exited");
			void shutdown(0, closeDb);
		}
	}, PARENT_CHECK_MS).unref();

	const turnVars: Record<string, string> = {};
	if (turnserver) {
		startCoturn(turnserver, vars.get("TURN_SECRET") ?? "", join(DATA, "coturn"));
		turnVars.TURN_URLS = `stun:127.0.0.1:${TURN_PORT},turn:127.0.0.1:${TURN_PORT}?transport=udp,turn:127.0.0.1:${TURN_PORT}?transport=tcp`;
	}

	// FCM, APNs and Web Push go to local stand-ins that check what the real services check
	// (scripts/local/fake-providers.ts), with keys generated for this run.
	pushStandIns = await startFakeProviders({ mediaNodeSecret: vars.get("MEDIA_NODE_SECRET") ?? "" });

	const mediaNodeUrl = `http://127.0.0.1:${MEDIA_PORT}`;
	const media = start("media", process.execPath, [join(ROOT, "media-node/src/main.ts")], {
		env: {
			...process.env,
			MEDIA_NODE_PORT: String(MEDIA_PORT),
			MEDIA_NODE_HOST: "127.0.0.1",
			MEDIA_NODE_SECRET: vars.get("MEDIA_NODE_SECRET"),
			API_URL: `http://127.0.0.1:${API_PORT}`,
			// The node probes the local coturn (TurnProbe) and tells the api whether TURN works.
			...(turnserver ? { TURN_URLS: turnVars.TURN_URLS, TURN_SECRET: vars.get("TURN_SECRET") } : {}),
		},
	});

	await buildWeb({ watch: true }); // web/dist must exist before wrangler starts; rebuilt on change
	const wrangler = startWranglerDev({
		root: ROOT,
		port: API_PORT,
		persistTo: join(DATA, "wrangler"),
		vars: {
			DATABASE_URL: db.databaseUrl,
			DB_WS_PROXY: db.wsProxy,
			MEDIA_NODE_URL: mediaNodeUrl,
			PUBLIC_URL: `http://127.0.0.1:${API_PORT}`,
			...pushBindings(pushStandIns, vars),
			...turnVars,
		},
	});
	for (const [name, child] of [
		["api", wrangler],
		["media node", media],
	] as const) {
		void child.exited.then((code) => {
			if (!stopping) {
				log(`${name} exited (code ${code}); stopping everything`);
				void shutdown(1, closeDb);
			}
		});
	}

	const apiUrl = `http://127.0.0.1:${API_PORT}`;
	const [apiUp, mediaUp] = await Promise.all([
		waitForHttp(`${apiUrl}/health`, STARTUP_TIMEOUT_MS),
		waitForHttp(`${mediaNodeUrl}/health`, STARTUP_TIMEOUT_MS),
	]);
	if (!apiUp || !mediaUp) {
		log(`startup failed: api ${apiUp ? "up" : "down"}, media node ${mediaUp ? "up" : "down"}`);
		await shutdown(1, closeDb);
	}
	writeDevEndpoints(DATA, { apiUrl, databaseUrl: db.databaseUrl, wsProxy: db.wsProxy }); // for npm run backup/restore
	log("SecureConnect is running:");
	log(`  web app    ${apiUrl}/   (rebuilt from web/ on every change)`);
	log(`  api        ${apiUrl}   (health ${apiUrl}/health, readiness ${apiUrl}/ready)`);
	log(`  api docs   ${apiUrl}/docs   (OpenAPI ${apiUrl}/openapi.json)`);
	log(`  media node ${mediaNodeUrl}`);
	if (turnserver) log(`  coturn     turn:127.0.0.1:${TURN_PORT}`);
	log(
		`  push       FCM and APNs go to local stand-ins, as does Web Push to ${pushStandIns.url}/webpush/<id>; what they received: ${pushStandIns.url}/_control/requests`,
	);
	log(`  state in ${DATA} (delete it to start fresh); secrets in .dev.vars`);
	log("Press Ctrl-C to stop everything.");
	if (!existsSync(join(ROOT, "media-node/node_modules"))) log("warning: media-node is not installed; run npm install");
}

main().catch(async (error: unknown) => {
	process.stderr.write(`[dev] failed to start: ${(error as Error).stack ?? String(error)}\n`);
	await shutdown(1);
});
