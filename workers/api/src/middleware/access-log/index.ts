import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import { recordRequest } from "../../lib/metrics.ts";
import type { AppEnv } from "../../types.ts";

/** One JSON line per request: route pattern, never the raw URL (it may carry ids or tokens in queries). */
export const accessLog = () =>
	createMiddleware<AppEnv>(async (c, next) => {
		const started = Date.now();
		await next();
		const line = { method: c.req.method, route: routePath(c), status: c.res.status, durationMs: Date.now() - started };
		c.var.log.info("request", line);
		recordRequest(c.env, line);
	});
