// npm run restore -- --from <dir> [--replace]
// Restores a backup made by `npm run backup`: Postgres (into a migrated
// database whose tables are empty, or emptied with --replace), then R2
// objects, then each Durable Object's state. See scripts/backup/target.ts.
import { resolve } from "node:path";
import { restore } from "./backup/archive.ts";
import { option, resolveTarget } from "./backup/target.ts";

const from = option(process.argv, "from");
if (!from) {
	console.error("usage: npm run restore -- --from <dir> [--replace]");
	process.exit(2);
}
try {
	const { target, describe } = resolveTarget();
	console.log(`restoring into ${describe}`);
	await restore(target, resolve(from), { replace: process.argv.includes("--replace") }, (line) => console.log(line));
	console.log("restore complete");
} catch (error) {
	console.error(`restore failed: ${error instanceof Error ? error.message : String(error)}`);
	process.exit(1);
}
