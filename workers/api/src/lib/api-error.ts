import type { ErrorCode } from "@secureconnect/protocol";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface ApiErrorOptions {
	details?: unknown;
	/** Seconds; sent as Retry-After. */
	retryAfter?: number;
	headers?: Record<string, string>;
	cause?: unknown;
}

/** The one error type the api throws; the error handler renders its envelope. */
export class ApiError extends HTTPException {
	readonly code: ErrorCode;
	readonly details: unknown;
	readonly retryAfter: number | undefined;
	readonly headers: Record<string, string>;

	constructor(status: ContentfulStatusCode, code: ErrorCode, message: string, options: ApiErrorOptions = {}) {
		super(status, { message, cause: options.cause });
		this.code = code;
		this.details = options.details;
		this.retryAfter = options.retryAfter;
		this.headers = options.headers ?? {};
	}
}

/** A dependency (database, storage, media node) did not answer in time or at all. */
export class DependencyUnavailableError extends ApiError {
	constructor(dependency: string, cause?: unknown) {
		super(503, "SERVICE_UNAVAILABLE", `The ${dependency} is unavailable; try again shortly.`, {
			retryAfter: 5,
			cause,
		});
	}
}
