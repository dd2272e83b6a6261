import { createRoute } from "@hono/zod-openapi";
import {
	CreateFileRequest,
	CreateFileResponse,
	FileResponse,
	StorageUsage,
	UploadedPart,
	UploadStatus,
} from "@secureconnect/protocol";
import { z } from "zod";
import { deleteFile } from "../../files/cleanup.ts";
import { serveContent } from "../../files/downloads.ts";
import { fileLimits, R2_MAX_PARTS } from "../../files/limits.ts";
import { fileForOwner, fileForReader, toFileInfo, uploadInstructions } from "../../files/model.ts";
import { storageUsage } from "../../files/quota.ts";
import { completeUpload, createFile, putContent, putPart, uploadStatus } from "../../files/uploads.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Files"];
const IdParam = z.object({ id: z.string().max(64) });
const PartParam = z.object({
	id: z.string().max(64),
	partNumber: z.coerce.number().int().min(1).max(R2_MAX_PARTS),
});
const one = z.object({ file: FileResponse.shape.file });
const Bytes = z.string().meta({ format: "binary", description: "The bytes (ciphertext), streamed" });
const binary = (description: string) => ({ description, content: { "application/octet-stream": { schema: Bytes } } });
const rawBody = {
	required: true,
	description: "Exactly the declared number of bytes, with Content-Length (no chunked encoding)",
	content: { "application/octet-stream": { schema: Bytes } },
} as const;

/** Paths whose bodies stream into R2: exempt from the JSON body limit; they enforce the declared size themselves. */
export const STREAMED_UPLOAD_PATH = /^\/v1\/files\/[^/]+\/(content|parts\/[^/]+)$/;

const create = createRoute({
	method: "post",
	path: "/v1/files",
	tags,
	summary:
		"Declare a file (size, content type, optional conversation): reserves quota and says how to upload (single PUT or parts)",
	...authed,
	request: { body: jsonBody(CreateFileRequest) },
	responses: {
		201: jsonResponse(CreateFileResponse, "Created; upload the bytes as `upload` says"),
		...errorResponses(400, 401, 404, 413, 415, 429, 503),
	},
});
const get = createRoute({
	method: "get",
	path: "/v1/files/{id}",
	tags,
	summary: "Metadata (owner or members of its conversation; 404 for anyone else)",
	...authed,
	request: { params: IdParam },
	responses: { 200: jsonResponse(FileResponse, "File"), ...errorResponses(401, 404) },
});
const putWhole = createRoute({
	method: "put",
	path: "/v1/files/{id}/content",
	tags,
	summary: "Single upload: the whole body, streamed into storage; completes the file",
	...authed,
	request: { params: IdParam, body: rawBody },
	responses: {
		200: jsonResponse(one, "Stored; the file is complete"),
		...errorResponses(400, 401, 403, 404, 409, 410, 411, 503),
	},
});
const putOnePart = createRoute({
	method: "put",
	path: "/v1/files/{id}/parts/{partNumber}",
	tags,
	summary: "Multipart upload: one part (1-based), streamed into storage; sending a part again replaces it",
	...authed,
	request: { params: PartParam, body: rawBody },
	responses: {
		200: jsonResponse(z.object({ part: UploadedPart }), "Stored"),
		...errorResponses(400, 401, 403, 404, 409, 410, 411, 503),
	},
});
const listParts = createRoute({
	method: "get",
	path: "/v1/files/{id}/parts",
	tags,
	summary: "Which parts of a multipart upload have arrived, and which are missing (to resume)",
	...authed,
	request: { params: IdParam },
	responses: { 200: jsonResponse(UploadStatus, "Upload status"), ...errorResponses(401, 403, 404, 409, 410) },
});
const complete = createRoute({
	method: "post",
	path: "/v1/files/{id}/complete",
	tags,
	summary: "Finish an upload: every part must be there and add up to the declared size (idempotent)",
	...authed,
	request: { params: IdParam },
	responses: { 200: jsonResponse(one, "Complete"), ...errorResponses(401, 403, 404, 409, 410, 503) },
});
const download = createRoute({
	method: "get",
	path: "/v1/files/{id}/content",
	tags,
	summary:
		"The bytes, as an attachment; one byte range (Range → 206, unsatisfiable → 416), ETag with If-None-Match (304) and If-Range",
	...authed,
	request: { params: IdParam },
	responses: {
		200: binary("The whole file"),
		206: binary("The requested range (Content-Range)"),
		304: { description: "Not modified (If-None-Match)" },
		...errorResponses(401, 404, 409, 416, 503),
	},
});
const remove = createRoute({
	method: "delete",
	path: "/v1/files/{id}",
	tags,
	summary: "Delete a file or abort its upload (owner); releases its quota",
	...authed,
	request: { params: IdParam },
	responses: { ...NO_CONTENT, ...errorResponses(401, 403, 404, 503) },
});
const usage = createRoute({
	method: "get",
	path: "/v1/storage/usage",
	tags,
	summary: "Bytes used by complete files, reserved by unfinished uploads, and the quota",
	...authed,
	responses: { 200: jsonResponse(StorageUsage, "Usage"), ...errorResponses(401) },
});

export const fileRoutes = createRouter()
	.openapi(create, async (c) => {
		const row = await createFile(c.var.db, c.env, fileLimits(c.env), c.var.auth.userId, c.req.valid("json"));
		return c.json({ file: toFileInfo(row), upload: uploadInstructions(row) }, 201);
	})
	.openapi(get, async (c) => {
		const row = await fileForReader(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		const mine = row.ownerId === c.var.auth.userId && row.state === "pending";
		return c.json({ file: toFileInfo(row), ...(mine && { upload: uploadInstructions(row) }) }, 200);
	})
	.openapi(putWhole, async (c) => {
		const row = await putContent(c.var.db, c.env, c.req.valid("param").id, c.var.auth.userId, c.req.raw);
		return c.json({ file: toFileInfo(row) }, 200);
	})
	.openapi(putOnePart, async (c) => {
		const { id, partNumber } = c.req.valid("param");
		const part = await putPart(c.var.db, c.env, id, c.var.auth.userId, partNumber, c.req.raw);
		return c.json({ part }, 200);
	})
	.openapi(listParts, async (c) => {
		return c.json(await uploadStatus(c.var.db, c.req.valid("param").id, c.var.auth.userId), 200);
	})
	.openapi(complete, async (c) => {
		const row = await completeUpload(c.var.db, c.env, c.req.valid("param").id, c.var.auth.userId);
		return c.json({ file: toFileInfo(row) }, 200);
	})
	.openapi(download, async (c) => {
		const row = await fileForReader(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		return serveContent(c.env, row, c.req.raw);
	})
	.openapi(remove, async (c) => {
		const row = await fileForOwner(c.var.db, c.req.valid("param").id, c.var.auth.userId);
		await deleteFile(c.var.db, c.env, row, c.var.log);
		return c.body(null, 204);
	})
	.openapi(usage, async (c) => {
		return c.json(await storageUsage(c.var.db, c.var.auth.userId, fileLimits(c.env)), 200);
	});
