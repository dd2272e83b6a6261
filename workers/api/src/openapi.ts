import { OpenAPIHono } from "@hono/zod-openapi";
import { ErrorEnvelope } from "@secureconnect/protocol";
import { ApiError } from "./lib/api-error.ts";
import { requireAuth } from "./middleware/auth/index.ts";
import type { AppEnv } from "./types.ts";

export const API_TITLE = "SecureConnect API";
export const API_VERSION = "1.0.0";

/** A router whose request validation failures become the standard 400 envelope. */
export function createRouter<E extends AppEnv = AppEnv>(): OpenAPIHono<E> {
	return new OpenAPIHono<E>({
		defaultHook: (result) => {
			if (!result.success) {
				const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
				const first = issues[0];
				throw new ApiError(
					400,
					"VALIDATION_FAILED",
					first ? `Invalid ${result.target} field "${first.path || "(root)"}": ${first.message}` : "Invalid request.",
					{ details: { target: result.target, issues } },
				);
			}
		},
	});
}

/** Standard error responses for route definitions, so the document lists them. */
export function errorResponses(...statuses: number[]) {
	return Object.fromEntries(
		statuses.map((status) => [
			status,
			{
				description: "Error",
				content: { "application/json": { schema: ErrorEnvelope } },
			},
		]),
	);
}

/** A required JSON request body. */
export function jsonBody<T>(schema: T) {
	return { required: true, content: { "application/json": { schema } } } as const;
}

/** A JSON response. */
export function jsonResponse<T>(schema: T, description: string) {
	return { description, content: { "application/json": { schema } } } as const;
}

export const NO_CONTENT = { 204: { description: "Done" } } as const;
export const BEARER = [{ bearer: [] }];

/** Spread into a route definition: the route requires a live session and its handler gets `c.var.auth`. */
export const authed = { security: BEARER, middleware: requireAuth() };
