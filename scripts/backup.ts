// npm run backup -- --out <dir>
// A logical backup of Postgres (every table), R2 objects and each Durable
// Object's state; see scripts/backup/archive.ts for the format and
// scripts/backup/target.ts for how the deployment is chosen.
import { resolve } from "node:path";
import { backup } from "./backup/archive.ts";
import { option, resolveTarget } from "./backup/target.ts";

const out = option(process.argv, "out");
if (!out) {
	console.error("usage: npm run backup -- --out <dir>");
	process.exit(2);
}
try {
	const { target, describe } = resolveTarget();
	console.log(`backing up ${describe}`);
	const manifest = await backup(target, resolve(out), (line) => console.log(line));
	console.log(`backup complete: ${resolve(out)} (${manifest.runId})`);
} catch (error) {
	console.error(`backup failed: ${error instanceof Error ? error.message : String(error)}`);
	process.exit(1);
}
