// File limits; each can be set by the variable of the same name. A value that
// is not usable is named in a 500 MISCONFIGURED answer, never silently ignored.
import type { Env } from "../env.ts";
import { ApiError } from "../lib/api-error.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const DEFAULT_MAX_FILE_BYTES = 2 * GiB;
/** Files up to this size are sent in one PUT; larger ones in parts. */
export const DEFAULT_MULTIPART_THRESHOLD_BYTES = 8 * MiB;
export const DEFAULT_PART_SIZE_BYTES = 8 * MiB;
export const DEFAULT_MAX_PENDING_UPLOADS = 20;
export const DEFAULT_UPLOAD_TTL_SECONDS = 24 * 3600;
export const DEFAULT_STORAGE_QUOTA_BYTES = 5 * GiB;

/** R2: every part but the last is at least 5 MiB and at most 5 GiB; at most 10,000 parts. */
export const R2_MIN_PART_BYTES = 5 * MiB;
export const R2_MAX_PART_BYTES = 5 * GiB;
export const R2_MAX_PARTS = 10_000;
/** R2's largest single PUT (Workers request bodies are capped lower by plan: 100–500 MB). */
export const R2_MAX_SINGLE_PUT_BYTES = 5 * GiB - 5 * MiB;

export interface FileLimits {
	maxFileBytes: number;
	multipartThresholdBytes: number;
	partSizeBytes: number;
	/** Lower-case MIME types or `type/*`; empty = any. */
	allowedContentTypes: string[];
	maxPendingUploads: number;
	uploadTtlSeconds: number;
	storageQuotaBytes: number;
}

function integer(env: Env, name: keyof Env, fallback: number, min: number, max: number): number {
	const raw = env[name];
	if (raw === undefined || raw === "") return fallback;
	const value = Number(raw);
	if (!Number.isSafeInteger(value) || value < min || value > max) {
		throw new ApiError(500, "MISCONFIGURED", `${name} must be an integer from ${min} to ${max}.`);
	}
	return value;
}

const cache = new WeakMap<Env, FileLimits>();

export function fileLimits(env: Env): FileLimits {
	const cached = cache.get(env);
	if (cached) return cached;
	const partSizeBytes = integer(env, "PART_SIZE_BYTES", DEFAULT_PART_SIZE_BYTES, R2_MIN_PART_BYTES, R2_MAX_PART_BYTES);
	const limits: FileLimits = {
		maxFileBytes: integer(env, "MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES, 0, partSizeBytes * R2_MAX_PARTS),
		multipartThresholdBytes: integer(
			env,
			"MULTIPART_THRESHOLD_BYTES",
			DEFAULT_MULTIPART_THRESHOLD_BYTES,
			0,
			R2_MAX_SINGLE_PUT_BYTES,
		),
		partSizeBytes,
		allowedContentTypes: (env.ALLOWED_CONTENT_TYPES ?? "")
			.split(",")
			.map((t) => t.trim().toLowerCase())
			.filter(Boolean),
		maxPendingUploads: integer(env, "MAX_PENDING_UPLOADS", DEFAULT_MAX_PENDING_UPLOADS, 1, 10_000),
		uploadTtlSeconds: integer(env, "UPLOAD_TTL_SECONDS", DEFAULT_UPLOAD_TTL_SECONDS, 60, 7 * 86_400),
		storageQuotaBytes: integer(env, "STORAGE_QUOTA_BYTES", DEFAULT_STORAGE_QUOTA_BYTES, 0, Number.MAX_SAFE_INTEGER),
	};
	cache.set(env, limits);
	return limits;
}

export function contentTypeAllowed(limits: FileLimits, contentType: string): boolean {
	if (limits.allowedContentTypes.length === 0) return true;
	const major = contentType.split("/")[0];
	return limits.allowedContentTypes.some((t) => t === contentType || t === `${major}/*`);
}

/** How a file of `size` bytes is uploaded under these limits. */
export function uploadPlan(limits: FileLimits, size: number): { partSize: number | null; partCount: number } {
	if (size <= limits.multipartThresholdBytes) return { partSize: null, partCount: 1 };
	return { partSize: limits.partSizeBytes, partCount: Math.max(1, Math.ceil(size / limits.partSizeBytes)) };
}
