// `npm run bench [-- --quick] [-- --only realtime,files]`: every figure measured
// on this machine in this run, each next to a baseline from the same run. Prints
// a Markdown table and, as the very last line, one JSON object with every figure.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopAll } from "../scripts/local/processes.ts";
import type { Figure } from "./accounts.ts";

const quick = process.argv.includes("--quick");
const PARTS = ["accounts", "realtime", "files", "media"] as const;
/** `--only a,b`: run those parts alone (while working on one of them); the default runs every part. */
function selectedParts(): Set<string> {
	const at = process.argv.indexOf("--only");
	if (at === -1) return new Set(PARTS);
	const wanted = (process.argv[at + 1] ?? "").split(",").filter(Boolean);
	const unknown = wanted.filter((part) => !(PARTS as readonly string[]).includes(part));
	if (wanted.length === 0 || unknown.length > 0) {
		process.stderr.write(`--only takes a comma-separated list of: ${PARTS.join(", ")}\n`);
		process.exit(2);
	}
	return new Set(wanted);
}
const parts = selectedParts();
const BENCH_PORT = Number(process.env.BENCH_PORT ?? 8890);
/** The realtime part's range: its api, then the ws and Socket.IO baselines at +2 and +3. */
const REALTIME_PORT = BENCH_PORT + 10;

async function main(): Promise<void> {
	const dataDir = mkdtempSync(join(tmpdir(), "sc-bench-"));
	const figures: Figure[] = [];
	try {
		// Each part is loaded only when it runs (the media part needs the mediasoup worker built).
		if (parts.has("accounts")) {
			const { benchAccounts } = await import("./accounts.ts");
			figures.push(...(await benchAccounts(quick, dataDir, BENCH_PORT)));
			await stopAll();
		}
		if (parts.has("realtime")) {
			const { benchRealtime } = await import("./realtime.ts");
			figures.push(...(await benchRealtime(quick, dataDir, REALTIME_PORT)));
			await stopAll();
		}
		if (parts.has("files")) {
			const { benchFiles } = await import("./files.ts");
			figures.push(...(await benchFiles(quick, dataDir, BENCH_PORT + 30)));
			await stopAll();
		}
		if (parts.has("media")) {
			const { benchMedia } = await import("./media.ts");
			figures.push(...(await benchMedia(quick, dataDir, BENCH_PORT + 20)));
		}
	} finally {
		await stopAll();
		rmSync(dataDir, { recursive: true, force: true });
	}
	const rows = figures.map(
		(f) =>
			`| ${f.label} | ${f.value} ${f.unit} | ${f.baseline ? `${f.baseline.label}: ${f.baseline.value} ${f.unit}` : "—"} |`,
	);
	process.stdout.write(
		`\n| Figure | Value | Baseline (same run) |\n|---|---|---|\n${rows.join("\n")}\n\n${JSON.stringify(
			Object.fromEntries(figures.map((f) => [f.key, f.value])),
		)}\n`,
	);
}

main().then(
	() => process.exit(0),
	async (error: unknown) => {
		process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
		await stopAll();
		process.exit(1);
	},
);
