// Every call to the R2 bucket goes through here: each has a timeout, and a
// failure becomes 503 SERVICE_UNAVAILABLE with Retry-After.
import type { Env } from "../env.ts";
import { ApiError, DependencyUnavailableError } from "../lib/api-error.ts";
import { withTimeout } from "../lib/timeout.ts";

/** Metadata calls: head, delete, create/complete/abort multipart, the start of a get. */
export const STORAGE_TIMEOUT_MS = 10_000;
/** Streamed uploads also get this long per byte: a client slower than 64 KiB/s is cut off. */
export const MIN_UPLOAD_BYTES_PER_SECOND = 64 * 1024;
/** R2 deletes at most this many keys per call. */
const DELETE_BATCH = 1000;

/** Where a user's file lives: under the owner, so an account's objects can be listed and erased. */
export function objectKey(ownerId: string, fileId: string): string {
	return `users/${ownerId}/${fileId}`;
}

export function userPrefix(ownerId: string): string {
	return `users/${ownerId}/`;
}

export function transferTimeoutMs(bytes: number): number {
	return STORAGE_TIMEOUT_MS + Math.ceil((bytes / MIN_UPLOAD_BYTES_PER_SECOND) * 1000);
}

export async function storageCall<T>(what: string, work: () => Promise<T>, ms = STORAGE_TIMEOUT_MS): Promise<T> {
	try {
		return await withTimeout(`file storage: ${what}`, ms, work());
	} catch (error) {
		if (error instanceof ApiError) throw error;
		throw new DependencyUnavailableError("file storage", error);
	}
}

/** Streams a known-length body into one object. */
export function putObject(env: Env, key: string, body: ReadableStream | null, size: number): Promise<R2Object | null> {
	return storageCall(
		"put",
		() =>
			env.FILES.put(key, body === null || size === 0 ? new Uint8Array(0) : body, {
				httpMetadata: { contentType: "application/octet-stream" },
			}),
		transferTimeoutMs(size),
	);
}

export function createMultipart(env: Env, key: string): Promise<R2MultipartUpload> {
	return storageCall("create multipart upload", () =>
		env.FILES.createMultipartUpload(key, { httpMetadata: { contentType: "application/octet-stream" } }),
	);
}

/** Streams one known-length part into a multipart upload. */
export function uploadPart(
	env: Env,
	key: string,
	uploadId: string,
	partNumber: number,
	body: ReadableStream | null,
	size: number,
): Promise<R2UploadedPart> {
	return storageCall(
		"upload part",
		() =>
			env.FILES.resumeMultipartUpload(key, uploadId).uploadPart(
				partNumber,
				body === null || size === 0 ? new Uint8Array(0) : body,
			),
		transferTimeoutMs(size),
	);
}

export function completeMultipart(env: Env, key: string, uploadId: string, parts: R2UploadedPart[]): Promise<R2Object> {
	return storageCall("complete multipart upload", () => env.FILES.resumeMultipartUpload(key, uploadId).complete(parts));
}

export function abortMultipart(env: Env, key: string, uploadId: string): Promise<void> {
	return storageCall("abort multipart upload", () => env.FILES.resumeMultipartUpload(key, uploadId).abort());
}

export function getObject(env: Env, key: string, range?: { offset: number; length: number }) {
	return storageCall("get", () => env.FILES.get(key, range ? { range } : {}));
}

/** Deletes keys in batches; deleting a missing key is not an error. */
export async function deleteObjects(env: Env, keys: string[]): Promise<void> {
	for (let i = 0; i < keys.length; i += DELETE_BATCH) {
		await storageCall("delete", () => env.FILES.delete(keys.slice(i, i + DELETE_BATCH)));
	}
}

/** Every key under a prefix (e.g. one user's objects), including ones the database no longer knows. */
export async function listKeys(env: Env, prefix: string): Promise<string[]> {
	const keys: string[] = [];
	let cursor: string | undefined;
	do {
		const page: R2Objects = await storageCall("list", () =>
			env.FILES.list({ prefix, limit: 1000, ...(cursor !== undefined && { cursor }) }),
		);
		keys.push(...page.objects.map((o) => o.key));
		cursor = page.truncated ? page.cursor : undefined;
	} while (cursor !== undefined);
	return keys;
}
