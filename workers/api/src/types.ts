import type { Config } from "./config/config.ts";
import type { Database } from "./db/client.ts";
import type { Env } from "./env.ts";
import type { Logger } from "./lib/logger.ts";
import type { Principal } from "./middleware/auth/index.ts";

export interface AppVariables {
	requestId: string;
	log: Logger;
	config: Config;
	/** Opened on first use and closed when the response is done. */
	db: Database;
}

export interface AppEnv {
	Bindings: Env;
	Variables: AppVariables;
}

export interface AuthedEnv extends AppEnv {
	Variables: AppVariables & { auth: Principal };
}
