// Uploads: create (reserve quota, pick single PUT or multipart), stream the
// body or its parts straight into R2 without buffering, list arrived parts,
// complete. Bytes that do not match what was declared are refused before
// anything is written.
import type { CreateFileRequest, UploadedPart, UploadStatus } from "@secureconnect/protocol";
import { asc, eq } from "drizzle-orm";
import { conversationForMember } from "../conversations/service.ts";
import type { Database } from "../db/client.ts";
import { fileParts, files } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../lib/api-error.ts";
import { newId } from "../lib/ids.ts";
import { contentTypeAllowed, type FileLimits, uploadPlan } from "./limits.ts";
import { expectedPartSize, type FileRow, isMultipart, pendingUpload, uploadInstructions } from "./model.ts";
import { commitUpload, deleteRows, reserveAndInsert } from "./quota.ts";
import {
	abortMultipart,
	completeMultipart,
	createMultipart,
	deleteObjects,
	objectKey,
	putObject,
	uploadPart,
} from "./storage.ts";

export async function createFile(
	db: Database,
	env: Env,
	limits: FileLimits,
	ownerId: string,
	body: CreateFileRequest,
): Promise<FileRow> {
	if (body.size > limits.maxFileBytes) {
		throw new ApiError(413, "TOO_LARGE", `A file may have at most ${limits.maxFileBytes} bytes.`);
	}
	if (!contentTypeAllowed(limits, body.contentType)) {
		throw new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", `Files of type ${body.contentType} are not accepted here.`, {
			details: { allowed: limits.allowedContentTypes },
		});
	}
	if (body.conversationId !== undefined) await conversationForMember(db, body.conversationId, ownerId);
	const id = newId("file");
	const plan = uploadPlan(limits, body.size);
	const row = await reserveAndInsert(db, limits, {
		id,
		ownerId,
		conversationId: body.conversationId ?? null,
		size: body.size,
		contentType: body.contentType,
		r2Key: objectKey(ownerId, id),
		partSize: plan.partSize,
		partCount: plan.partCount,
		expiresAt: new Date(Date.now() + limits.uploadTtlSeconds * 1000),
	});
	if (!isMultipart(row)) return row;
	let uploadId: string;
	try {
		uploadId = (await createMultipart(env, row.r2Key)).uploadId;
	} catch (error) {
		// Nothing was stored: give the reservation back.
		await deleteRows(db, eq(files.id, row.id));
		throw error;
	}
	const [updated] = await db.update(files).set({ uploadId }).where(eq(files.id, row.id)).returning();
	if (!updated) throw new ApiError(404, "NOT_FOUND", "No such file.");
	return updated;
}

/** Content-Length of a streamed body; it must be present and equal what is expected. */
function declaredLength(request: Request, expected: number): number {
	const header = request.headers.get("content-length");
	if (header === null && expected === 0 && request.body === null) return 0;
	if (header === null) {
		throw new ApiError(411, "LENGTH_REQUIRED", `Send Content-Length: ${expected} (chunked bodies are not accepted).`);
	}
	const length = /^\d{1,16}$/.test(header.trim()) ? Number(header) : Number.NaN;
	if (length !== expected) {
		throw new ApiError(
			400,
			"SIZE_MISMATCH",
			`This upload takes exactly ${expected} bytes; Content-Length says ${header}.`,
			{
				details: { expectedBytes: expected },
			},
		);
	}
	return length;
}

/** Marks a pending file complete; if it vanished meanwhile (deleted, expired), its object goes too. */
async function markComplete(db: Database, env: Env, row: FileRow, object: R2Object): Promise<FileRow> {
	const committed = await commitUpload(db, row.id, object.etag);
	const [now] = await db.select().from(files).where(eq(files.id, row.id));
	if (!committed && now?.state !== "complete") {
		await deleteObjects(env, [row.r2Key]);
		throw new ApiError(404, "NOT_FOUND", "No such file.");
	}
	if (!now) throw new ApiError(404, "NOT_FOUND", "No such file.");
	await db.delete(fileParts).where(eq(fileParts.fileId, row.id));
	return now;
}

/** The single-PUT upload: the body streams into R2 and the file is complete. */
export async function putContent(db: Database, env: Env, fileId: string, ownerId: string, request: Request) {
	const row = await pendingUpload(db, fileId, ownerId);
	if (isMultipart(row)) {
		throw new ApiError(409, "CONFLICT", "This file is uploaded in parts: PUT /v1/files/{id}/parts/{partNumber}.");
	}
	declaredLength(request, row.size);
	const object = await putObject(env, row.r2Key, request.body, row.size);
	if (!object || object.size !== row.size) {
		await deleteObjects(env, [row.r2Key]);
		throw new ApiError(400, "SIZE_MISMATCH", `Expected ${row.size} bytes; the body had ${object?.size ?? "fewer"}.`);
	}
	return markComplete(db, env, row, object);
}

export async function putPart(
	db: Database,
	env: Env,
	fileId: string,
	ownerId: string,
	partNumber: number,
	request: Request,
): Promise<UploadedPart> {
	const row = await pendingUpload(db, fileId, ownerId);
	if (!isMultipart(row) || row.uploadId === null) {
		throw new ApiError(409, "CONFLICT", "This file is uploaded in one PUT to /v1/files/{id}/content.");
	}
	if (partNumber > row.partCount) {
		throw new ApiError(400, "VALIDATION_FAILED", `This upload has parts 1 to ${row.partCount}.`);
	}
	const size = expectedPartSize(row, partNumber);
	declaredLength(request, size);
	const part = await uploadPart(env, row.r2Key, row.uploadId, partNumber, request.body, size);
	const values = { fileId: row.id, partNumber, size, etag: part.etag, uploadedAt: new Date() };
	try {
		await db
			.insert(fileParts)
			.values(values)
			.onConflictDoUpdate({
				target: [fileParts.fileId, fileParts.partNumber],
				set: { size, etag: part.etag, uploadedAt: values.uploadedAt },
			});
	} catch (error) {
		// The file row went away while the part was streaming (deleted or expired).
		if ((error as { cause?: { code?: string } }).cause?.code === "23503") {
			throw new ApiError(404, "NOT_FOUND", "No such file.");
		}
		throw error;
	}
	return { partNumber, size, uploadedAt: values.uploadedAt.toISOString() };
}

async function partsOf(db: Database, fileId: string) {
	return db.select().from(fileParts).where(eq(fileParts.fileId, fileId)).orderBy(asc(fileParts.partNumber));
}

function missingParts(row: FileRow, arrived: Array<{ partNumber: number }>): number[] {
	const have = new Set(arrived.map((p) => p.partNumber));
	return Array.from({ length: row.partCount }, (_, i) => i + 1).filter((n) => !have.has(n));
}

export async function uploadStatus(db: Database, fileId: string, ownerId: string): Promise<UploadStatus> {
	const row = await pendingUpload(db, fileId, ownerId);
	const upload = uploadInstructions(row);
	if (upload.method !== "multipart") {
		throw new ApiError(409, "CONFLICT", "This file is uploaded in one PUT; it has no parts.");
	}
	const parts = await partsOf(db, row.id);
	return {
		upload,
		parts: parts.map((p) => ({ partNumber: p.partNumber, size: p.size, uploadedAt: p.uploadedAt.toISOString() })),
		missing: missingParts(row, parts),
	};
}

/** Completes a multipart upload once every part is there and the sizes add up to the declared size. */
export async function completeUpload(db: Database, env: Env, fileId: string, ownerId: string): Promise<FileRow> {
	const current = await pendingUpload(db, fileId, ownerId).catch(async (error: unknown) => {
		// Completing a complete file again answers the same (a retried request).
		if (error instanceof ApiError && error.status === 409) {
			const [row] = await db.select().from(files).where(eq(files.id, fileId));
			if (row?.state === "complete") return row;
		}
		throw error;
	});
	if (current.state === "complete") return current;
	if (!isMultipart(current) || current.uploadId === null) {
		throw new ApiError(409, "UPLOAD_INCOMPLETE", "No content has arrived yet: PUT it to /v1/files/{id}/content.");
	}
	const parts = await partsOf(db, current.id);
	const missing = missingParts(current, parts);
	if (missing.length > 0) {
		throw new ApiError(409, "UPLOAD_INCOMPLETE", `Parts still missing: ${missing.slice(0, 20).join(", ")}.`, {
			details: { missing },
		});
	}
	const received = parts.reduce((sum, p) => sum + p.size, 0);
	if (received !== current.size) {
		throw new ApiError(
			409,
			"SIZE_MISMATCH",
			`The parts add up to ${received} bytes, not the declared ${current.size}.`,
			{
				details: { declaredBytes: current.size, receivedBytes: received },
			},
		);
	}
	const object = await completeMultipart(
		env,
		current.r2Key,
		current.uploadId,
		parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
	);
	if (object.size !== current.size) {
		// Never serve what does not match the declaration.
		await deleteObjects(env, [current.r2Key]);
		await abortMultipart(env, current.r2Key, current.uploadId).catch(() => {});
		throw new ApiError(409, "SIZE_MISMATCH", `Stored ${object.size} bytes, not the declared ${current.size}.`);
	}
	return markComplete(db, env, current, object);
}
