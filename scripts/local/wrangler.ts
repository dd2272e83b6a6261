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
	/**
	 * wrangler dev's local observability collector (on by default) records
	 * every span (each SQL statement, RPC and socket event) into its own SQLite
	 * on the runtime's one thread: in a load it took a third of the runtime's
	 * CPU. Deployed Workers trace outside the Worker, so the bench and the load
	 * test turn it off to measure what a deployment would do.
	 */
	localObservability?: boolean;
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
			env: {
				...process.env,
				CLOUDFLARE_CF_FETCH_ENABLED: "false",
				WRANGLER_SEND_METRICS: "false",
				NO_COLOR: "1",
				...(options.localObservability === false && { X_LOCAL_OBSERVABILITY: "false" }),
			},
		},
	);
}
