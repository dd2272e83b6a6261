// Which deployment `npm run backup` / `npm run restore` talk to.
//   DATABASE_URL   Postgres / Neon connection string (Neon: the direct, unpooled one)
//   DB_WS_PROXY    host:port of a local Neon-protocol proxy (unset against Neon)
//   API_URL        the api's base URL, e.g. https://api.example.com
//   ADMIN_TOKEN    the Worker's ADMIN_TOKEN secret
// With none of the first three set, a running `npm run dev` is used
// (.data/dev-endpoints.json) and ADMIN_TOKEN is read from .dev.vars.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readDevEndpoints } from "../local/endpoints.ts";
import type { Target } from "./archive.ts";

const ROOT = join(import.meta.dirname, "../..");

function devVar(name: string): string | undefined {
	const path = join(ROOT, ".dev.vars");
	if (!existsSync(path)) return undefined;
	for (const line of readFileSync(path, "utf8").split("\n")) {
		const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
		if (m?.[1] === name) return (m[2] ?? "").replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
	}
	return undefined;
}

export function resolveTarget(env: NodeJS.ProcessEnv = process.env): { target: Target; describe: string } {
	if (env.DATABASE_URL || env.API_URL) {
		const missing = ["DATABASE_URL", "API_URL", "ADMIN_TOKEN"].filter((n) => !env[n]);
		if (missing.length > 0) throw new Error(`set ${missing.join(", ")} (see scripts/backup/target.ts)`);
		const host = new URL(env.DATABASE_URL as string).host;
		return {
			target: {
				databaseUrl: env.DATABASE_URL as string,
				wsProxy: env.DB_WS_PROXY || undefined,
				apiUrl: env.API_URL as string,
				adminToken: env.ADMIN_TOKEN as string,
			},
			describe: `${env.API_URL} and Postgres at ${host}`,
		};
	}
	const dev = readDevEndpoints(join(ROOT, ".data"));
	const adminToken = env.ADMIN_TOKEN || devVar("ADMIN_TOKEN");
	if (!dev || !adminToken) {
		throw new Error(
			"no target: start `npm run dev` (it records its endpoints in .data/), or set DATABASE_URL, API_URL and ADMIN_TOKEN",
		);
	}
	return {
		target: { databaseUrl: dev.databaseUrl, wsProxy: dev.wsProxy, apiUrl: dev.apiUrl, adminToken },
		describe: `the local npm run dev at ${dev.apiUrl}`,
	};
}

/** `--name value` from argv. */
export function option(argv: string[], name: string): string | undefined {
	const i = argv.indexOf(`--${name}`);
	return i >= 0 ? argv[i + 1] : undefined;
}
