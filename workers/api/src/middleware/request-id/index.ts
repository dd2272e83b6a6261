import { createMiddleware } from "hono/factory";
import { parseLevel, rootLogger } from "../../lib/logger.ts";
import type { AppEnv } from "../../types.ts";

export const REQUEST_ID_HEADER = "x-request-id";
const ACCEPTED_ID = /^[A-Za-z0-9._:-]{8,128}$/;
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The id a request is known by: a caller's x-request-id, the trace id of its traceparent, or a new one. */
export function resolveRequestId(headers: Headers): string {
	const given = headers.get(REQUEST_ID_HEADER);
	if (given && ACCEPTED_ID.test(given)) return given;
	const trace = TRACEPARENT.exec(headers.get("traceparent") ?? "");
	if (trace?.[1] && !/^0+$/.test(trace[1])) return trace[1];
	return crypto.randomUUID();
}

export const requestId = () =>
	createMiddleware<AppEnv>(async (c, next) => {
		const id = resolveRequestId(c.req.raw.headers);
		c.set("requestId", id);
		c.set("log", rootLogger.child({ requestId: id }, parseLevel(c.env.LOG_LEVEL)));
		c.header(REQUEST_ID_HEADER, id);
		await next();
		c.res.headers.set(REQUEST_ID_HEADER, id);
	});
