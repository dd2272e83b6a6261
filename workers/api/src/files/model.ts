// File rows → wire objects, and who may see a file: its owner, or a current
// member of the conversation it is attached to. Anyone else gets 404.
import type { ConversationId, FileId, FileInfo, UploadInstructions, UserId } from "@secureconnect/protocol";
import { eq } from "drizzle-orm";
import { isMember } from "../conversations/service.ts";
import type { Database } from "../db/client.ts";
import { files } from "../db/schema/index.ts";
import { ApiError } from "../lib/api-error.ts";

export type FileRow = typeof files.$inferSelect;

export function toFileInfo(row: FileRow): FileInfo {
	return {
		id: row.id as FileId,
		ownerId: row.ownerId as UserId,
		conversationId: row.conversationId as ConversationId | null,
		size: row.size,
		contentType: row.contentType,
		state: row.state,
		createdAt: row.createdAt.toISOString(),
		completedAt: row.completedAt?.toISOString() ?? null,
		expiresAt: row.state === "pending" ? row.expiresAt.toISOString() : null,
	};
}

export function isMultipart(row: FileRow): row is FileRow & { partSize: number } {
	return row.partSize !== null;
}

/** Bytes part `n` (1-based) of a multipart file must have. */
export function expectedPartSize(row: FileRow & { partSize: number }, partNumber: number): number {
	return partNumber < row.partCount ? row.partSize : row.size - row.partSize * (row.partCount - 1);
}

export function uploadInstructions(row: FileRow): UploadInstructions {
	const base = `/v1/files/${row.id}`;
	const expiresAt = row.expiresAt.toISOString();
	if (!isMultipart(row)) {
		return { method: "single", url: `${base}/content`, completeUrl: `${base}/complete`, expiresAt };
	}
	return {
		method: "multipart",
		partSize: row.partSize,
		partCount: row.partCount,
		lastPartSize: expectedPartSize(row, row.partCount),
		partUrl: `${base}/parts/{partNumber}`,
		partsUrl: `${base}/parts`,
		completeUrl: `${base}/complete`,
		expiresAt,
	};
}

const notFound = () => new ApiError(404, "NOT_FOUND", "No such file.");

/** The file, if the user may read it (owner or member of its conversation); otherwise 404. */
export async function fileForReader(db: Database, fileId: string, userId: string): Promise<FileRow> {
	const [row] = await db.select().from(files).where(eq(files.id, fileId));
	if (!row) throw notFound();
	if (row.ownerId === userId) return row;
	if (row.conversationId !== null && (await isMember(db, row.conversationId, userId))) return row;
	throw notFound();
}

/** The file, if the user owns it; a reader who is not the owner gets 403, anyone else 404. */
export async function fileForOwner(db: Database, fileId: string, userId: string): Promise<FileRow> {
	const row = await fileForReader(db, fileId, userId);
	if (row.ownerId !== userId) throw new ApiError(403, "FORBIDDEN", "Only the file's owner may do this.");
	return row;
}

/** A pending upload of the owner that has not expired. */
export async function pendingUpload(db: Database, fileId: string, userId: string): Promise<FileRow> {
	const row = await fileForOwner(db, fileId, userId);
	if (row.state !== "pending") throw new ApiError(409, "CONFLICT", "This file is already complete.");
	if (row.expiresAt.getTime() <= Date.now()) {
		throw new ApiError(410, "UPLOAD_EXPIRED", "This upload has expired; create the file again.");
	}
	return row;
}
