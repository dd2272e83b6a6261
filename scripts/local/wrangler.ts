// Runs `wrangler dev` with the Node that runs this script (wrangler needs ≥ 22.12;
// the system Node may be older).
import { join } from "node:path";
import { type Managed, start } from "./processes.ts";

export interface WranglerDevOptions {
	root: string;
	port: number;
	persistTo: string;
	vars: Record<string, string>;
	config?: string;
	name?: string;
}

export function startWranglerDev(options: WranglerDevOptions): Managed {
	const vars = Object.entries(options.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
	return start(
		options.name ?? "api",
		process.execPath,
		[
			join(options.root, "node_modules/wrangler/bin/wrangler.js"),
			"dev",
			...(options.config ? ["--config", options.config] : []),
			"--ip",
			"127.0.0.1",
			"--port",
			String(options.port),
			"--persist-to",
			options.persistTo,
			"--show-interactive-dev-session=false",
			"--log-level",
			"warn",
			...vars,
		],
		{
			cwd: options.root,
			env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
		},
	);
}
