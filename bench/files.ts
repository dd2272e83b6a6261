// Files figure: how much the Worker's memory grows while a 50 MiB file is
// uploaded (multipart, parts streamed into R2), next to the growth for a 1 MiB
// single PUT measured the same way. A body buffered in the Worker would show
// up as growth of at least its size; a streamed one stays far below it.
// Memory is read from /proc/<pid>/status of the workerd process that runs the
// Worker under `wrangler dev` (not the proxy workerd in front of it): VmRSS
// sampled during the upload, and VmHWM after clearing it (clear_refs) where
// the kernel allows.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startLocalDatabase } from "../scripts/local/database.ts";
import { type Managed, stopAll, waitForHttp } from "../scripts/local/processes.ts";
import { GENERATORS } from "../scripts/local/secrets.ts";
import { wranglerWorkerd } from "../scripts/local/workerd-processes.ts";
import { startWranglerDev } from "../scripts/local/wrangler.ts";
import type { Figure } from "./accounts.ts";
import { round } from "./stats.ts";

const ROOT = join(import.meta.dirname, "..");
const MiB = 1024 * 1024;
const SAMPLE_EVERY_MS = 5;
const MAX_RESTARTS = 5;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function log(message: string): void {
	process.stderr.write(`[files] ${message}\n`);
}

// ---------------------------------------------------------------- the Worker's process

/** The workerd that runs the Worker (and the local R2 it writes to), not wrangler's proxy in front of it. */
function workerProcess(root: number, port: number): number {
	const { runtime } = wranglerWorkerd(root, port);
	if (runtime.length !== 1) throw new Error(`expected one workerd running the Worker, found ${runtime.length}`);
	return runtime[0] as number;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
	const status = readFileSync(`/proc/${pid}/status`, "utf8");
	const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1];
	if (kb === undefined) throw new Error(`process ${pid} has no ${field} (exited?)`);
	return Number(kb);
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false where not permitted. */
function resetPeak(pid: number): boolean {
	try {
		writeFileSync(`/proc/${pid}/clear_refs`, "5");
		return true;
	} catch {
		return false;
	}
}

async function settledRssKb(pid: number): Promise<number> {
	await sleep(500);
	const readings: number[] = [];
	for (let i = 0; i < 5; i++) {
		readings.push(statusKb(pid, "VmRSS"));
		await sleep(50);
	}
	return readings.sort((a, b) => a - b)[2] as number;
}

/** wrangler dev restarts its runtime when a watched source file changes; a run it interrupts is repeated. */
class RuntimeRestarted extends Error {}

/** Peak RSS growth (MB) of `pid` while `work` runs, above its settled RSS before. */
async function peakGrowthMb(pid: number, work: () => Promise<void>): Promise<number> {
	const alive = () => {
		try {
			return statusKb(pid, "VmRSS");
		} catch {
			throw new RuntimeRestarted(`workerd ${pid} exited during the measurement`);
		}
	};
	const before = await settledRssKb(pid).catch(() => alive());
	const hwmReset = resetPeak(pid);
	let peak = before;
	let running = true;
	let gone: unknown;
	const sampler = (async () => {
		while (running && gone === undefined) {
			try {
				peak = Math.max(peak, alive());
			} catch (error) {
				gone = error;
			}
			await sleep(SAMPLE_EVERY_MS);
		}
	})();
	try {
		await work();
	} catch (error) {
		if (gone !== undefined) throw gone;
		alive(); // a request cut off by a reload fails before the sampler notices
		throw error;
	} finally {
		running = false;
		await sampler;
	}
	if (gone !== undefined) throw gone;
	if (hwmReset) peak = Math.max(peak, statusKb(pid, "VmHWM"));
	return ((peak - before) * 1024) / 1e6;
}

// ---------------------------------------------------------------- the client

interface Upload {
	method: "single" | "multipart";
	url?: string;
	partUrl?: string;
	partSize?: number;
	partCount?: number;
	completeUrl: string;
}

async function request(api: string, token: string, path: string, init: RequestInit = {}): Promise<Response> {
	const res = await fetch(`${api}${path}`, {
		...init,
		headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
	});
	if (!res.ok)
		throw new Error(`${init.method ?? "GET"} ${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
	return res;
}

/** Declares, sends (one PUT or part after part, as the api says) and completes a file; returns its id. */
async function uploadFile(api: string, token: string, data: Buffer): Promise<string> {
	const created = (await (
		await request(api, token, "/v1/files", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ size: data.length, contentType: "application/octet-stream" }),
		})
	).json()) as { file: { id: string }; upload: Upload };
	const { upload } = created;
	if (upload.method === "single") {
		await (await request(api, token, upload.url as string, { method: "PUT", body: data })).arrayBuffer();
	} else {
		const partSize = upload.partSize as number;
		for (let n = 1; n <= (upload.partCount as number); n++) {
			const body = data.subarray((n - 1) * partSize, Math.min(data.length, n * partSize));
			const path = (upload.partUrl as string).replace("{partNumber}", String(n));
			await (await request(api, token, path, { method: "PUT", body })).arrayBuffer();
		}
	}
	await (await request(api, token, upload.completeUrl, { method: "POST" })).arrayBuffer();
	return created.file.id;
}

async function verify(api: string, token: string, id: string, data: Buffer): Promise<void> {
	const body = Buffer.from(await (await request(api, token, `/v1/files/${id}/content`)).arrayBuffer());
	const digest = (b: Buffer) => createHash("sha256").update(b).digest("hex");
	if (digest(body) !== digest(data)) throw new Error(`file ${id} came back different`);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

export async function benchFiles(quick: boolean, dataDir: string, port: number): Promise<Figure[]> {
	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	try {
		const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([k, g]) => [k, g()]));
		const api = `http://127.0.0.1:${port}`;
		if (
			await fetch(`${api}/health`).then(
				() => true,
				() => false,
			)
		) {
			throw new Error(`port ${port} is already serving something; stop it or pick another port`);
		}
		const wrangler: Managed = startWranglerDev({
			localObservability: false,
			root: ROOT,
			port,
			persistTo: join(dataDir, "files"),
			name: "files-api",
			vars: { ...secrets, DATABASE_URL: db.databaseUrl, DB_WS_PROXY: db.wsProxy, LOG_LEVEL: "error" },
		});
		if (!(await waitForHttp(`${api}/health`, 60_000))) throw new Error("api did not start");
		const id = Date.now().toString(36);
		const account = {
			email: `files-${id}@example.test`,
			password: "benchmark passphrase 42",
			handle: `files_${id}`,
			displayName: "Files bench",
		};
		const post = (path: string, body: unknown) =>
			fetch(`${api}${path}`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify(body),
			});
		// The first database connection can be slow on a loaded machine: wait until /ready says so.
		const deadline = Date.now() + 60_000;
		while (Date.now() < deadline) {
			const ready = await fetch(`${api}/ready`).catch(() => undefined);
			if (ready?.ok) break;
			await sleep(500);
		}
		const registered = await post("/v1/auth/register", account);
		if (!registered.ok)
			throw new Error(`files bench: register answered ${registered.status}: ${await registered.text()}`);
		const { accessToken: token } = (await (
			await post("/v1/auth/login", { email: account.email, password: account.password })
		).json()) as { accessToken: string };

		let worker = workerProcess(wrangler.child.pid as number, port);
		log(
			`Worker runs in workerd pid ${worker}; VmHWM reset ${resetPeak(worker) ? "available" : "not permitted: VmRSS sampled every 5 ms only"}`,
		);
		const small = randomBytes(1 * MiB);
		const large = randomBytes(50 * MiB);
		// Warm up both paths (JIT, R2 storage files, database connections), unmeasured.
		await verify(api, token, await uploadFile(api, token, small), small);
		await verify(api, token, await uploadFile(api, token, large), large);

		const runs = quick ? 1 : 3;
		const smallGrowth: number[] = [];
		const largeGrowth: number[] = [];
		let restarts = 0;
		for (let run = 0; run < runs; run++) {
			let smallId = "";
			let largeId = "";
			let small1: number;
			let large1: number;
			const t0 = performance.now();
			try {
				small1 = await peakGrowthMb(worker, async () => {
					smallId = await uploadFile(api, token, small);
				});
				large1 = await peakGrowthMb(worker, async () => {
					largeId = await uploadFile(api, token, large);
				});
			} catch (error) {
				if (!(error instanceof RuntimeRestarted) || ++restarts > MAX_RESTARTS) throw error;
				log(`${error.message} (wrangler dev reloads when a source file changes); repeating run ${run + 1}`);
				if (!(await waitForHttp(`${api}/health`, 60_000))) throw new Error("api did not come back");
				await sleep(2_000);
				worker = workerProcess(wrangler.child.pid as number, port);
				run--;
				continue;
			}
			smallGrowth.push(small1);
			largeGrowth.push(large1);
			const seconds = (performance.now() - t0) / 1000;
			log(
				`run ${run + 1}: peak RSS growth ${largeGrowth.at(-1)?.toFixed(1)} MB for 50 MiB (run took ${seconds.toFixed(1)} s), ` +
					`${smallGrowth.at(-1)?.toFixed(1)} MB for 1 MiB`,
			);
			await verify(api, token, smallId, small);
			await verify(api, token, largeId, large);
		}
		return [
			{
				key: "upload50mib_peak_rss_mb",
				label:
					"Peak RSS growth of the Worker's workerd during a 50 MiB (52.4 MB) upload in 8 MiB parts; buffering would add ≥ 52.4 MB",
				value: round(median(largeGrowth), 1),
				unit: "MB",
				baseline: { label: "same, during a 1 MiB single-PUT upload", value: round(median(smallGrowth), 1) },
			},
		];
	} finally {
		await stopAll();
		await db.close();
	}
}
