// `npm run bench [-- --quick]`: every figure measured on this machine in this
// run, each next to a baseline from the same run. Prints a Markdown table and,
// as the very last line, one JSON object with every figure.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopAll } from "../scripts/local/processes.ts";
import { benchAccounts, type Figure } from "./accounts.ts";
import { benchFiles } from "./files.ts";
import { benchMedia } from "./media.ts";
import { benchRealtime } from "./realtime.ts";

const quick = process.argv.includes("--quick");
const BENCH_PORT = Number(process.env.BENCH_PORT ?? 8890);
/** The realtime part's range: its api, then the ws and Socket.IO baselines at +2 and +3. */
const REALTIME_PORT = BENCH_PORT + 10;

async function main(): Promise<void> {
	const dataDir = mkdtempSync(join(tmpdir(), "sc-bench-"));
	const figures: Figure[] = [];
	try {
		figures.push(...(await benchAccounts(quick, dataDir, BENCH_PORT)));
		await stopAll();
		figures.push(...(await benchRealtime(quick, dataDir, REALTIME_PORT)));
		await stopAll();
		figures.push(...(await benchFiles(quick, dataDir, BENCH_PORT + 30)));
		await stopAll();
		figures.push(...(await benchMedia(quick, dataDir, BENCH_PORT + 20)));
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
