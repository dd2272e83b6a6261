import { createMiddleware } from "hono/factory";
import { ConfigError, loadConfig } from "../../config/config.ts";
import { ApiError } from "../../lib/api-error.ts";
import type { AppEnv } from "../../types.ts";

export const config = () =>
	createMiddleware<AppEnv>(async (c, next) => {
		try {
			c.set("config", await loadConfig(c.env));
		} catch (error) {
			if (!(error instanceof ConfigError)) throw error;
			c.var.log.error("configuration invalid", { problems: error.problems });
			throw new ApiError(500, "MISCONFIGURED", `The server is misconfigured: ${error.problems.join("; ")}`);
		}
		await next();
	});
