// Accounts figures: Argon2id cost per hash in workerd (PBKDF2 at the deployed
// cap as baseline), and authenticated GET /v1/users/me under 100 concurrent
// callers (GET /health at the same concurrency as baseline).
import { join } from "node:path";
import { startLocalDatabase } from "../scripts/local/database.ts";
import { stopAll, waitForHttp } from "../scripts/local/processes.ts";
import { GENERATORS } from "../scripts/local/secrets.ts";
import { startWranglerDev } from "../scripts/local/wrangler.ts";
import { loadTest, round, summarize } from "./stats.ts";

export interface Figure {
	key: string;
	label: string;
	value: number;
	unit: string;
	baseline?: { label: string; value: number };
}

const ROOT = join(import.meta.dirname, "..");

async function timed(url: string): Promise<number> {
	const t0 = performance.now();
	const res = await fetch(url);
	await res.text();
	if (!res.ok) throw new Error(`${url} answered ${res.status}`);
	return performance.now() - t0;
}

async function perHash(base: string, kind: string, n: number): Promise<number> {
	await timed(`${base}/?kind=${kind}&n=2`); // warm up: instantiate WASM, JIT
	const empty: number[] = [];
	const full: number[] = [];
	for (let i = 0; i < 3; i++) {
		empty.push(await timed(`${base}/?kind=${kind}&n=0`));
		full.push(await timed(`${base}/?kind=${kind}&n=${n}`));
	}
	return (Math.min(...full) - Math.min(...empty)) / n;
}

export async function benchAccounts(quick: boolean, dataDir: string, port: number): Promise<Figure[]> {
	const figures: Figure[] = [];
	const hashPort = port + 1;
	startWranglerDev({
		localObservability: false,
		root: ROOT,
		port: hashPort,
		persistTo: join(dataDir, "hash"),
		vars: {},
		config: join(ROOT, "bench/wrangler.hash.toml"),
		name: "bench-hash",
	});
	const hashBase = `http://127.0.0.1:${hashPort}`;
	if (!(await waitForHttp(`${hashBase}/?n=0`, 60_000))) throw new Error("hash bench worker did not start");
	const n = quick ? 5 : 20;
	const argon = await perHash(hashBase, "argon2id", n);
	const pbkdf2 = await perHash(hashBase, "pbkdf2", n);
	figures.push({
		key: "login_hash_ms",
		label: "Argon2id (m=19 MiB, t=2, p=1) per password hash in workerd",
		value: round(argon),
		unit: "ms",
		baseline: { label: "PBKDF2-SHA256 at the 100k-iteration Workers cap", value: round(pbkdf2) },
	});

	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	try {
		const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([k, g]) => [k, g()]));
		startWranglerDev({
			localObservability: false,
			root: ROOT,
			port,
			persistTo: join(dataDir, "api"),
			vars: { ...secrets, DATABASE_URL: db.databaseUrl, DB_WS_PROXY: db.wsProxy, LOG_LEVEL: "error" },
		});
		const api = `http://127.0.0.1:${port}`;
		if (!(await waitForHttp(`${api}/health`, 60_000))) throw new Error("api did not start");
		const id = Date.now().toString(36);
		const body = {
			email: `bench-${id}@example.test`,
			password: "benchmark passphrase 42",
			handle: `bench_${id}`,
			displayName: "Bench",
		};
		const post = (path: string, payload: unknown) =>
			fetch(`${api}${path}`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify(payload),
			});
		if (!(await post("/v1/auth/register", body)).ok) throw new Error("bench register failed");
		const login = (await (await post("/v1/auth/login", { email: body.email, password: body.password })).json()) as {
			accessToken: string;
		};
		const headers = { authorization: `Bearer ${login.accessToken}` };
		const total = quick ? 500 : 3000;
		const get =
			(path: string, h: Record<string, string> = {}) =>
			async () => {
				const res = await fetch(`${api}${path}`, { headers: h });
				await res.arrayBuffer();
				if (!res.ok) throw new Error(`${path} answered ${res.status}`);
			};
		await loadTest(200, 100, get("/v1/users/me", headers)); // warm up
		const health = summarize(await loadTest(total, 100, get("/health")));
		const me = summarize(await loadTest(total, 100, get("/v1/users/me", headers)));
		figures.push(
			{
				key: "api_get_p50_ms",
				label: "GET /v1/users/me p50, 100 concurrent (token + session check + read)",
				value: me.p50,
				unit: "ms",
				baseline: { label: "GET /health p50, same load", value: health.p50 },
			},
			{
				key: "api_get_p99_ms",
				label: "GET /v1/users/me p99, 100 concurrent",
				value: me.p99,
				unit: "ms",
				baseline: { label: "GET /health p99, same load", value: health.p99 },
			},
		);
	} finally {
		await stopAll();
		await db.close();
	}
	return figures;
}
