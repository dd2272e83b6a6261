import type { ErrorCode, ErrorEnvelope } from "@secureconnect/protocol";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, DependencyUnavailableError } from "../../lib/api-error.ts";
import { rootLogger } from "../../lib/logger.ts";
import type { AppEnv } from "../../types.ts";
import { REQUEST_ID_HEADER, resolveRequestId } from "../request-id/index.ts";
import { isUnavailable } from "./classify.ts";

const CODE_BY_STATUS: Partial<Record<number, ErrorCode>> = {
	400: "BAD_REQUEST",
	401: "UNAUTHORIZED",
	403: "FORBIDDEN",
	404: "NOT_FOUND",
	405: "METHOD_NOT_ALLOWED",
	409: "CONFLICT",
	413: "PAYLOAD_TOO_LARGE",
	415: "UNSUPPORTED_MEDIA_TYPE",
	429: "RATE_LIMITED",
	503: "SERVICE_UNAVAILABLE",
};

function requestIdOf(c: Context<AppEnv>): string {
	return c.get("requestId") ?? resolveRequestId(c.req.raw.headers);
}

export function errorResponse(c: Context<AppEnv>, error: ApiError): Response {
	const requestId = requestIdOf(c);
	const body: ErrorEnvelope = {
		error: {
			code: error.code,
			message: error.message,
			requestId,
			...(error.details !== undefined && { details: error.details }),
		},
	};
	const headers: Record<string, string> = { ...error.headers, [REQUEST_ID_HEADER]: requestId };
	if (error.retryAfter !== undefined) headers["retry-after"] = String(error.retryAfter);
	return c.json(body, error.status as ContentfulStatusCode, headers);
}

function toApiError(error: unknown): ApiError {
	if (error instanceof ApiError) return error;
	if (error instanceof HTTPException) {
		if (error.status === 400 && /malformed json/i.test(error.message)) {
			return new ApiError(400, "MALFORMED_JSON", "The request body is not valid JSON.");
		}
		const status = error.status as ContentfulStatusCode;
		return new ApiError(status, CODE_BY_STATUS[status] ?? "BAD_REQUEST", error.message || "Request refused.");
	}
	if (isUnavailable(error)) return new DependencyUnavailableError("database", error);
	return new ApiError(500, "INTERNAL_ERROR", "Something went wrong on our side.");
}

export const onError: ErrorHandler<AppEnv> = (error, c) => {
	const apiError = toApiError(error);
	const log = c.get("log") ?? rootLogger.child({ requestId: requestIdOf(c) });
	if (apiError.status >= 500) {
		log.error("request failed", { code: apiError.code, status: apiError.status, error, cause: apiError.cause });
	}
	return errorResponse(c, apiError);
};

/** Route patterns → matchers, to tell "no such path" (404) from "wrong method" (405). */
export function notFoundHandler(
	routes: () => ReadonlyArray<{ method: string; path: string }>,
): NotFoundHandler<AppEnv> {
	let matchers: Array<{ method: string; pattern: RegExp }> | undefined;
	return (c) => {
		matchers ??= routes()
			.filter((r) => r.method !== "ALL" && !r.path.includes("*"))
			.map((r) => ({
				method: r.method,
				pattern: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/:[^/]+/g, "/[^/]+")}$`),
			}));
		const allowed = [...new Set(matchers.filter((m) => m.pattern.test(c.req.path)).map((m) => m.method))];
		if (allowed.length > 0) {
			if (allowed.includes("GET")) allowed.push("HEAD");
			return errorResponse(
				c,
				new ApiError(405, "METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here; use ${allowed.join(", ")}.`, {
					headers: { allow: allowed.join(", ") },
				}),
			);
		}
		return errorResponse(c, new ApiError(404, "NOT_FOUND", `No route for ${c.req.method} ${c.req.path}.`));
	};
}
