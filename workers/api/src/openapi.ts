import { OpenAPIHono } from "@hono/zod-openapi";
import { ErrorEnvelope } from "@secureconnect/protocol";
import { ApiError } from "./lib/api-error.ts";
import type { AppEnv } from "./types.ts";

export const API_TITLE = "SecureConnect API";
export const API_VERSION = "1.0.0";

/** A router whose request validation failures become the standard 400 envelope. */
export function createRouter(): OpenAPIHono<AppEnv> {
	return new OpenAPIHono<AppEnv>({
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
