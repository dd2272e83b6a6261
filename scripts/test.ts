// `npm test`: lint, secret scan, npm audit, type-check, every vitest project
// (workers inside workerd, Node tests), the database tests again on a real
// Postgres when TEST_POSTGRES_URL is set, mediasoup's own suite against our
// worker, the end-to-end scripts, the fuzzer and a 30-second load test.
// Ends with the one line CI reads: "N passed, N failed".
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { startWsProxy } from "./local/ws-proxy.ts";
import { SKIPPED } from "./supply-chain.ts";
import { readProgress } from "./vitest-progress.ts";

const ROOT = join(import.meta.dirname, "..");
const RESULTS = join(ROOT, ".data/test-results");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);

interface Tally {
	passed: number;
	failed: number;
}
const total: Tally = { passed: 0, failed: 0 };
const summary: string[] = [];

function run(label: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): number {
	process.stdout.write(`\n=== ${label}\n`);
	const result = spawnSync(command, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, ...env } });
	return result.status ?? 1;
}

function check(label: string, command: string, args: string[]): void {
	const ok = run(label, command, args) === 0;
	ok ? total.passed++ : total.failed++;
	summary.push(`${ok ? "ok  " : "FAIL"} ${label}`);
}

/** scripts/supply-chain.ts secrets|audit: exit 0 passed, 1 failed, SKIPPED counted as neither (the summary says so). */
function supplyChain(label: string, which: "secrets" | "audit"): void {
	const status = run(label, process.execPath, [join(ROOT, "scripts/supply-chain.ts"), which]);
	if (status === SKIPPED) {
		summary.push(
			`skip ${label}: the audit endpoint could not be reached, not counted (with AUDIT_REQUIRED set it fails)`,
		);
		return;
	}
	status === 0 ? total.passed++ : total.failed++;
	summary.push(`${status === 0 ? "ok  " : "FAIL"} ${label}`);
}

/**
 * A vitest run that prints nothing for this long has stalled: three times the slowest
 * file seen on this 2-core machine (startup ~25 s, a file ≤ 20 s, all while printing).
 */
const VITEST_STALL_MS = 90_000;
/**
 * Runs of one vitest stage at most. The stall seen until session 6 (the runner inside
 * workerd waiting at a file's end for the reply to a held-back console line; see the
 * README, "A stalled vitest run") is prevented in vitest.config.ts; this stays as the
 * guard: a retry runs only the files that had not finished.
 */
const VITEST_ATTEMPTS = 4;

/** Runs vitest, killing it if it goes silent; returns its exit status (null when killed). */
function vitestOnce(label: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
	process.stdout.write(`\n=== ${label}\n`);
	return new Promise((resolve) => {
		// Its own process group: a stall is ended with every workerd runtime it started, not vitest alone.
		const child = spawn(bin("vitest"), args, {
			cwd: ROOT,
			stdio: ["ignore", "pipe", "pipe"],
			env: { ...process.env, ...env },
			detached: true,
		});
		const killGroup = () => {
			try {
				if (child.pid) process.kill(-child.pid, "SIGKILL");
			} catch {
				// The group is gone already.
			}
		};
		const onSignal = (signal: NodeJS.Signals) => {
			killGroup();
			process.exit(signal === "SIGINT" ? 130 : 143);
		};
		process.once("SIGINT", onSignal);
		process.once("SIGTERM", onSignal);
		let last = Date.now();
		const relay = (out: NodeJS.WriteStream) => (chunk: Buffer) => {
			last = Date.now();
			out.write(chunk);
		};
		child.stdout.on("data", relay(process.stdout));
		child.stderr.on("data", relay(process.stderr));
		const watchdog = setInterval(() => {
			if (Date.now() - last < VITEST_STALL_MS) return;
			process.stdout.write(`\n[test] vitest printed nothing for ${VITEST_STALL_MS / 1000} s: stopping it\n`);
			killGroup();
		}, 5_000);
		child.on("exit", (code) => {
			clearInterval(watchdog);
			process.off("SIGINT", onSignal);
			process.off("SIGTERM", onSignal);
			// Runtimes a finished run left behind (none expected) must not outlive it.
			killGroup();
			resolve(code);
		});
	});
}

/**
 * One vitest stage. A run that stalls (its runner goes silent after a file has ended and
 * the next never starts) is stopped and only the files it had not finished run again, up
 * to VITEST_ATTEMPTS runs; the tally adds up every file's last result.
 */
async function vitest(label: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
	const progressFile = join(RESULTS, `${label.replace(/\W+/g, "-")}.jsonl`);
	rmSync(progressFile, { force: true });
	const vitestArgs = ["run", "--reporter=default", `--reporter=${join(ROOT, "scripts/vitest-progress.ts")}`, ...args];
	const stageEnv = { ...env, VITEST_PROGRESS_FILE: progressFile };
	let status = await vitestOnce(label, vitestArgs, stageEnv);
	for (let run = 1; status === null; run++) {
		const { plan, finished } = readProgress(progressFile);
		const left = plan?.filter((file) => !finished.has(file));
		if (left?.length === 0) {
			summary.push(`note ${label}: run ${run} stalled after its last file had finished`);
			status = 0;
			break;
		}
		if (run === VITEST_ATTEMPTS) break;
		summary.push(
			`note ${label}: run ${run} stalled after ${finished.size} files; ` +
				(left ? `${left.length} files not finished were run again` : "run again from the start"),
		);
		status = await vitestOnce(`${label} (run ${run + 1} after a stall)`, [...vitestArgs, ...(left ?? [])], stageEnv);
	}
	const { finished } = readProgress(progressFile);
	const tally: Tally = { passed: 0, failed: 0 };
	const failures: string[] = [];
	for (const file of finished.values()) {
		tally.passed += file.passed;
		tally.failed += file.failed;
		failures.push(...file.failures);
	}
	// A crash outside any file (or a run that never finished) still counts as a failure.
	if (status !== 0 && tally.failed === 0) tally.failed = 1;
	total.passed += tally.passed;
	total.failed += tally.failed;
	summary.push(`${tally.failed ? "FAIL" : "ok  "} ${label}: ${tally.passed} passed, ${tally.failed} failed`);
	if (status !== 0 && failures.length === 0)
		summary.push("     vitest exited with an error outside any test: see its output above");
	for (const line of failures.slice(0, 10)) summary.push(`     ✗ ${line}`);
}

function mediasoupSuite(): void {
	const label = "mediasoup's own test suite against our worker";
	process.stdout.write(`\n=== ${label}\n`);
	const result = spawnSync(process.execPath, [join(ROOT, "media-node/scripts/test-mediasoup.mjs")], {
		cwd: ROOT,
		encoding: "utf8",
		stdio: ["ignore", "pipe", "inherit"],
	});
	process.stdout.write(result.stdout ?? "");
	const m = /mediasoup suite: (\d+) passed, (\d+) failed/.exec(result.stdout ?? "");
	const tally = m ? { passed: Number(m[1]), failed: Number(m[2]) } : { passed: 0, failed: 1 };
	if (result.status !== 0 && tally.failed === 0) tally.failed = 1;
	total.passed += tally.passed;
	total.failed += tally.failed;
	summary.push(`${tally.failed ? "FAIL" : "ok  "} ${label}: ${tally.passed} passed, ${tally.failed} failed`);
}

/** The web app in real Chromium against the real stack (web/e2e/story.ts); ends with "web e2e: N passed, N failed". */
function webE2e(): void {
	const label = "web app end-to-end in Chromium";
	process.stdout.write(`\n=== ${label}\n`);
	const result = spawnSync(process.execPath, [join(ROOT, "web/e2e/story.ts")], {
		cwd: ROOT,
		encoding: "utf8",
		maxBuffer: 64 * 1024 * 1024,
		stdio: ["ignore", "pipe", "inherit"],
	});
	process.stdout.write(result.stdout ?? "");
	const m = /web e2e: (\d+) passed, (\d+) failed/.exec(result.stdout ?? "");
	const tally = m ? { passed: Number(m[1]), failed: Number(m[2]) } : { passed: 0, failed: 1 };
	if (result.status !== 0 && tally.failed === 0) tally.failed = 1;
	total.passed += tally.passed;
	total.failed += tally.failed;
	summary.push(`${tally.failed ? "FAIL" : "ok  "} ${label}: ${tally.passed} passed, ${tally.failed} failed`);
}

/** A script that ends with "<tag>: N passed, N failed" (ops checks, the restore drill). */
function scriptSuite(label: string, script: string, tag: string): void {
	process.stdout.write(`\n=== ${label}\n`);
	const result = spawnSync(process.execPath, [join(ROOT, script)], {
		cwd: ROOT,
		encoding: "utf8",
		stdio: ["ignore", "pipe", "inherit"],
	});
	process.stdout.write(result.stdout ?? "");
	const m = new RegExp(`${tag}: (\\d+) passed, (\\d+) failed`).exec(result.stdout ?? "");
	const tally = m ? { passed: Number(m[1]), failed: Number(m[2]) } : { passed: 0, failed: 1 };
	if (result.status !== 0 && tally.failed === 0) tally.failed = 1;
	total.passed += tally.passed;
	total.failed += tally.failed;
	summary.push(`${tally.failed ? "FAIL" : "ok  "} ${label}: ${tally.passed} passed, ${tally.failed} failed`);
}

/** A throwaway database on the real server, so runs never see each other's rows. */
async function withScratchDatabase(serverUrl: string, body: (url: string) => Promise<void>): Promise<void> {
	const url = new URL(serverUrl);
	const proxy = await startWsProxy({ target: { host: url.hostname, port: Number(url.port || 5432) } });
	neonConfig.webSocketConstructor = createRequire(import.meta.url)("ws");
	neonConfig.wsProxy = (host, port) => `${proxy.address}/v1?address=${host}:${port}`;
	neonConfig.useSecureWebSocket = false;
	neonConfig.pipelineConnect = false;
	neonConfig.pipelineTLS = false;
	const admin = new Pool({ connectionString: serverUrl, max: 1 });
	admin.on("error", () => {});
	const name = `secureconnect_test_${process.pid}_${Date.now()}`;
	try {
		await admin.query(`CREATE DATABASE ${name}`);
		const scratch = new URL(serverUrl);
		scratch.pathname = `/${name}`;
		await body(scratch.toString());
	} finally {
		await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
		await admin.end();
		await proxy.close();
	}
}

async function main(): Promise<void> {
	mkdirSync(RESULTS, { recursive: true });
	check("lint (biome)", bin("biome"), ["check", "."]);
	supplyChain("secret scan of tracked files (secretlint)", "secrets");
	supplyChain("npm audit --omit=dev --audit-level=high", "audit");
	check("type-check (node, media node, scripts)", bin("tsc"), ["-p", "tsconfig.json"]);
	check("type-check (workers)", bin("tsc"), ["-p", "workers/tsconfig.json"]);
	check("type-check (web app)", bin("tsc"), ["-p", "web/tsconfig.json"]);
	check("type-check (sdk in the browser + call test page)", bin("tsc"), ["-p", "sdk/tsconfig.json"]);
	// The Worker's [assets] directory must exist before workerd starts.
	check("build web app (esbuild)", process.execPath, [join(ROOT, "scripts/build-web.ts")]);
	await vitest("vitest: workers in workerd on embedded Postgres + Node tests", []);
	const realPostgres = process.env.TEST_POSTGRES_URL;
	if (realPostgres) {
		await withScratchDatabase(realPostgres, async (url) =>
			vitest("vitest: workers in workerd on real PostgreSQL", ["--project", "workers"], { TEST_DATABASE_URL: url }),
		);
	}
	mediasoupSuite();
	scriptSuite("calls in Chromium through api, media node and coturn", "e2e/calls/run.ts", "call e2e");
	scriptSuite("ops checks (promtool, dashboard, coturn template)", "scripts/ops-check.ts", "ops checks");
	scriptSuite("restore drill: seed, back up, wipe, restore, compare", "scripts/restore-drill.ts", "restore drill");
	check(
		"fuzz: 10,000 requests from every operation's schemas: no 5xx, 4xx in the envelope, refusals write nothing",
		process.execPath,
		[join(ROOT, "tests/fuzz/run.ts"), "--requests", "10000"],
	);
	// tests/load/run.ts: the 5-minute run of `npm run test:load`, for 30 s, with the same checks.
	check(
		"load test: 1,000 sockets, 100 conversations, 30 s of sends, exactly-once in-order delivery",
		process.execPath,
		[join(ROOT, "tests/load/run.ts"), "--duration", "30"],
	);
	webE2e();

	process.stdout.write(`\n=== summary\n${summary.join("\n")}\n\n${total.passed} passed, ${total.failed} failed\n`);
	process.exit(total.failed === 0 ? 0 : 1);
}

await main();
