// Where a running `npm run dev` can be reached, for tools that connect to it
// (npm run backup / restore): written at startup into .data/, which only the
// local user can read.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface DevEndpoints {
	apiUrl: string;
	databaseUrl: string;
	wsProxy: string;
}

const FILE = "dev-endpoints.json";

export function writeDevEndpoints(dataDir: string, endpoints: DevEndpoints): void {
	writeFileSync(join(dataDir, FILE), `${JSON.stringify(endpoints, null, 2)}\n`, { mode: 0o600 });
}

export function readDevEndpoints(dataDir: string): DevEndpoints | undefined {
	const path = join(dataDir, FILE);
	return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as DevEndpoints) : undefined;
}
