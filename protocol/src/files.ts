// Files: ciphertext blobs the SDK encrypts client-side (AES-GCM, key inside the
// E2EE message). The server stores what it gets and checks only sizes.
import { z } from "zod";
import { ConversationId } from "./conversations.ts";
import { UserId } from "./ids.ts";

export const FileId = z
	.string()
	.regex(/^fil_[a-z2-7]{10,40}$/)
	.brand<"FileId">();
export type FileId = z.infer<typeof FileId>;

/** A MIME type without parameters, e.g. `image/jpeg`; stored lower-case. */
export const ContentType = z
	.string()
	.trim()
	.toLowerCase()
	.max(255)
	.regex(/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/, "must be a MIME type such as image/jpeg");

export const FileState = z.enum(["pending", "complete"]);
export type FileState = z.infer<typeof FileState>;

export const FileInfo = z
	.object({
		id: FileId,
		ownerId: UserId,
		conversationId: ConversationId.nullable(),
		size: z.number().int().min(0),
		contentType: z.string(),
		/** `pending` until every byte has arrived; only `complete` files can be downloaded. */
		state: FileState,
		createdAt: z.iso.datetime(),
		completedAt: z.iso.datetime().nullable(),
		/** When an unfinished upload is abandoned and its quota reservation released; null once complete. */
		expiresAt: z.iso.datetime().nullable(),
	})
	.meta({ id: "File" });
export type FileInfo = z.infer<typeof FileInfo>;

export const CreateFileRequest = z
	.object({
		/** Exact size in bytes of what will be uploaded (the ciphertext). */
		size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
		contentType: ContentType,
		/** Attach to a conversation: its members may then read the file. */
		conversationId: ConversationId.optional(),
	})
	.meta({ id: "CreateFileRequest" });
export type CreateFileRequest = z.infer<typeof CreateFileRequest>;

/** How to send the bytes: one PUT of the whole body, or numbered parts then complete. */
export const SingleUpload = z
	.object({
		method: z.literal("single"),
		/** PUT the whole body here, with Content-Length equal to the declared size; that completes the file. */
		url: z.string(),
		/** Optional after the PUT (idempotent). */
		completeUrl: z.string(),
		expiresAt: z.iso.datetime(),
	})
	.meta({ id: "SingleUpload" });

export const MultipartUpload = z
	.object({
		method: z.literal("multipart"),
		/** Every part but the last has exactly this many bytes. */
		partSize: z.number().int().positive(),
		partCount: z.number().int().positive(),
		lastPartSize: z.number().int().min(0),
		/** PUT part n (1-based) here, replacing `{partNumber}`; a part may be sent again. */
		partUrl: z.string(),
		/** GET: which parts have arrived (for resuming). */
		partsUrl: z.string(),
		/** POST once every part has arrived. */
		completeUrl: z.string(),
		expiresAt: z.iso.datetime(),
	})
	.meta({ id: "MultipartUpload" });

export const UploadInstructions = z.discriminatedUnion("method", [SingleUpload, MultipartUpload]).meta({
	id: "UploadInstructions",
});
export type UploadInstructions = z.infer<typeof UploadInstructions>;

export const CreateFileResponse = z.object({ file: FileInfo, upload: UploadInstructions });
export type CreateFileResponse = z.infer<typeof CreateFileResponse>;

/** Metadata; the owner of an unfinished upload also gets the upload instructions again. */
export const FileResponse = z.object({ file: FileInfo, upload: UploadInstructions.optional() });
export type FileResponse = z.infer<typeof FileResponse>;

export const UploadedPart = z
	.object({
		partNumber: z.number().int().positive(),
		size: z.number().int().min(0),
		uploadedAt: z.iso.datetime(),
	})
	.meta({ id: "UploadedPart" });
export type UploadedPart = z.infer<typeof UploadedPart>;

export const UploadStatus = z
	.object({
		upload: MultipartUpload,
		/** Parts that arrived, in order. */
		parts: z.array(UploadedPart),
		/** Part numbers still to send. */
		missing: z.array(z.number().int().positive()),
	})
	.meta({ id: "UploadStatus" });
export type UploadStatus = z.infer<typeof UploadStatus>;

export const StorageUsage = z
	.object({
		/** Bytes of complete files. */
		usedBytes: z.number().int().min(0),
		/** Bytes reserved by unfinished uploads. */
		reservedBytes: z.number().int().min(0),
		quotaBytes: z.number().int().min(0),
		pendingUploads: z.number().int().min(0),
	})
	.meta({ id: "StorageUsage" });
export type StorageUsage = z.infer<typeof StorageUsage>;
