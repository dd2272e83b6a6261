import { z } from "zod";

/** Every error code the api can answer with; clients switch on these. */
export const ERROR_CODES = [
	"BAD_REQUEST",
	"MALFORMED_JSON",
	"VALIDATION_FAILED",
	"UNAUTHORIZED",
	"INVALID_TOKEN",
	"TOKEN_EXPIRED",
	"TOKEN_REUSED",
	"INVALID_CREDENTIALS",
	"WEAK_PASSWORD",
	"EMAIL_NOT_VERIFIED",
	"FORBIDDEN",
	"NOT_FOUND",
	"METHOD_NOT_ALLOWED",
	"CONFLICT",
	"STALE_EPOCH",
	"EMAIL_TAKEN",
	"HANDLE_TAKEN",
	"BLOCKED",
	"PAYLOAD_TOO_LARGE",
	"TOO_LARGE",
	"QUOTA_EXCEEDED",
	"UNSUPPORTED_MEDIA_TYPE",
	"LENGTH_REQUIRED",
	"SIZE_MISMATCH",
	"UPLOAD_INCOMPLETE",
	"UPLOAD_EXPIRED",
	"TOO_MANY_PENDING_UPLOADS",
	"RANGE_NOT_SATISFIABLE",
	"ACCOUNT_LOCKED",
	"RATE_LIMITED",
	"INTERNAL_ERROR",
	"MISCONFIGURED",
	"SERVICE_UNAVAILABLE",
] as const;

export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorEnvelope = z
	.object({
		error: z.object({
			code: ErrorCode,
			message: z.string(),
			requestId: z.string(),
			details: z.unknown().optional(),
		}),
	})
	.meta({ id: "Error" });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;
