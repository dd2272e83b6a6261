// Operator api for backups and restores (scripts/backup.ts, scripts/restore.ts):
// the state that lives outside Postgres, i.e. R2 objects and each Durable
// Object's own SQLite (conversation logs, user channel cursors).
//
// Off unless the ADMIN_TOKEN secret is set (then 404, as if absent); every call
// needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. It is
// mounted before the body-size limit: objects stream through, and table pages
// have their own limit. Not in the OpenAPI document.
//
//   GET  /admin/v1/objects/{kind}/{name}/tables               {tables}
//   GET  /admin/v1/objects/{kind}/{name}/tables/{table}?after  one page {table, columns, rows, next}
//   PUT  /admin/v1/objects/{kind}/{name}/tables/{table}?first=1  write a page (first page replaces the table)
//   POST /admin/v1/objects/{kind}/{name}/restored              restart the object so it reloads its state
//   GET  /admin/v1/files?cursor&limit                         {objects:[{key,size,uploaded,httpMetadata,customMetadata}], cursor}
//   GET  /admin/v1/files/{key}                                the object's bytes
//   PUT  /admin/v1/files/{key}                                store bytes (Content-Length; x-sc-object: metadata JSON)
//   POST /admin/v1/uploads?key                                start a multipart restore {uploadId}
//   PUT  /admin/v1/uploads/{uploadId}/parts/{n}?key           one part {partNumber, etag}
//   POST /admin/v1/uploads/{uploadId}/complete?key            {parts} -> the object
// kind: "chat-room" (named by conversation id) or "user-channel" (named by user id).
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { TablePage } from "../../../../chat-room/src/snapshot.ts";
import { storageCall, transferTimeoutMs } from "../../files/storage.ts";
import { ApiError } from "../../lib/api-error.ts";
import { createRouter } from "../../openapi.ts";
import type { AppEnv } from "../../types.ts";

export const ADMIN_PREFIX = "/admin/v1";
export const OBJECT_META_HEADER = "x-sc-object";
const MIN_ADMIN_TOKEN_CHARS = 32;
/** A table page is at most ~2 MiB of rows (chat-room/src/snapshot.ts); leave room for JSON overhead. */
const MAX_PAGE_BODY_BYTES = 8 * 1024 * 1024;
const MAX_META_BYTES = 8 * 1024;
const NAME = /^[A-Za-z0-9_:.-]{1,128}$/;
const TABLE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const notFound = (c: Context<AppEnv>) => new ApiError(404, "NOT_FOUND", `No route for ${c.req.method} ${c.req.path}.`);

async function digest(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** Equal-length digests compared in constant time, so the token's length and prefix leak nothing. */
export async function tokenMatches(given: string, expected: string): Promise<boolean> {
	const [a, b] = await Promise.all([digest(given), digest(expected)]);
	return crypto.subtle.timingSafeEqual(a, b);
}

const requireAdmin = () =>
	createMiddleware<AppEnv>(async (c, next) => {
		const expected = c.env.ADMIN_TOKEN;
		if (!expected) throw notFound(c);
		if (expected.length < MIN_ADMIN_TOKEN_CHARS) {
			c.var.log.error("ADMIN_TOKEN is too short; the admin api stays off", { minimum: MIN_ADMIN_TOKEN_CHARS });
			throw notFound(c);
		}
		const header = c.req.header("authorization") ?? "";
		const given = header.startsWith("Bearer ") ? header.slice(7) : "";
		if (!given || !(await tokenMatches(given, expected))) {
			c.var.log.warn("admin call refused");
			throw new ApiError(401, "UNAUTHORIZED", "A valid admin token is required.");
		}
		await next();
	});

function objectStub(c: Context<AppEnv>) {
	const { kind, name } = c.req.param() as { kind: string; name: string };
	if (!NAME.test(name)) throw new ApiError(400, "VALIDATION_FAILED", "Invalid object name.");
	if (kind === "chat-room") return c.env.CHAT_ROOM.get(c.env.CHAT_ROOM.idFromName(name));
	if (kind === "user-channel") return c.env.USER_CHANNEL.get(c.env.USER_CHANNEL.idFromName(name));
	throw new ApiError(404, "NOT_FOUND", 'Object kinds are "chat-room" and "user-channel".');
}

function tableParam(c: Context<AppEnv>): string {
	const table = c.req.param("table") ?? "";
	if (!TABLE.test(table)) throw new ApiError(400, "VALIDATION_FAILED", "Invalid table name.");
	return table;
}

/** Errors thrown inside the object (no such table, unknown column) are the caller's: 400. */
async function inObject<T>(work: () => Promise<T>): Promise<T> {
	try {
		return await work();
	} catch (error) {
		const message = error instanceof Error ? error.message : String(error);
		if (/^(no table|not a plain|table .* has no column|a row of)/.test(message)) {
			throw new ApiError(400, "BAD_REQUEST", message);
		}
		throw error;
	}
}

function isPage(value: unknown, table: string): value is TablePage {
	if (typeof value !== "object" || value === null) return false;
	const page = value as Partial<TablePage>;
	return (
		page.table === table &&
		Array.isArray(page.columns) &&
		page.columns.every((c) => typeof c === "string") &&
		Array.isArray(page.rows) &&
		page.rows.every((r) => Array.isArray(r))
	);
}

interface ObjectMeta {
	httpMetadata?: R2HTTPMetadata;
	customMetadata?: Record<string, string>;
}

function objectMeta(c: Context<AppEnv>): ObjectMeta {
	const raw = c.req.header(OBJECT_META_HEADER);
	if (!raw) return {};
	if (raw.length > MAX_META_BYTES) throw new ApiError(400, "VALIDATION_FAILED", `${OBJECT_META_HEADER} is too large.`);
	try {
		const parsed = JSON.parse(raw) as ObjectMeta & { httpMetadata?: { cacheExpiry?: string | Date } };
		const http = parsed.httpMetadata;
		if (http?.cacheExpiry) http.cacheExpiry = new Date(http.cacheExpiry);
		return { httpMetadata: parsed.httpMetadata ?? {}, customMetadata: parsed.customMetadata ?? {} };
	} catch {
		throw new ApiError(400, "MALFORMED_JSON", `${OBJECT_META_HEADER} is not valid JSON.`);
	}
}

function contentLength(c: Context<AppEnv>): number {
	const length = Number(c.req.header("content-length"));
	if (!Number.isSafeInteger(length) || length < 0) throw new ApiError(411, "LENGTH_REQUIRED", "Send Content-Length.");
	return length;
}

function keyParam(c: Context<AppEnv>, from: "path" | "query"): string {
	const key = (from === "path" ? c.req.param("key") : c.req.query("key")) ?? "";
	if (!key || key.length > 1024) throw new ApiError(400, "VALIDATION_FAILED", "Invalid object key.");
	return key;
}

const pageLimit = () =>
	bodyLimit({
		maxSize: MAX_PAGE_BODY_BYTES,
		onError: () => {
			throw new ApiError(413, "PAYLOAD_TOO_LARGE", "A table page is limited to 8 MiB.");
		},
	});

export const adminRoutes = createRouter()
	.use(`${ADMIN_PREFIX}/*`, requireAdmin())
	.get(`${ADMIN_PREFIX}/objects/:kind/:name/tables`, async (c) => {
		const stub = objectStub(c);
		return c.json({ tables: await stub.snapshotTables() });
	})
	.get(`${ADMIN_PREFIX}/objects/:kind/:name/tables/:table`, async (c) => {
		const stub = objectStub(c);
		const table = tableParam(c);
		const after = Number(c.req.query("after") ?? "0");
		if (!Number.isSafeInteger(after)) throw new ApiError(400, "VALIDATION_FAILED", "after must be an integer.");
		const page = await inObject(() => stub.exportPage(table, after));
		return c.json(page);
	})
	.put(`${ADMIN_PREFIX}/objects/:kind/:name/tables/:table`, pageLimit(), async (c) => {
		const stub = objectStub(c);
		const table = tableParam(c);
		let body: unknown;
		try {
			body = await c.req.json();
		} catch {
			throw new ApiError(400, "MALFORMED_JSON", "The request body is not valid JSON.");
		}
		if (!isPage(body, table)) throw new ApiError(400, "VALIDATION_FAILED", "Expected {table, columns, rows}.");
		const page: TablePage = { table, columns: body.columns, rows: body.rows, next: null };
		const written = await inObject(() => stub.importPage(page, c.req.query("first") === "1"));
		return c.json({ written });
	})
	.post(`${ADMIN_PREFIX}/objects/:kind/:name/restored`, async (c) => {
		// The object resets itself to reload what was written; that reset reaches us as an error.
		await objectStub(c)
			.finishImport()
			.catch(() => {});
		await objectStub(c).snapshotTables();
		return c.body(null, 204);
	})
	.get(`${ADMIN_PREFIX}/files`, async (c) => {
		const cursor = c.req.query("cursor");
		const limit = Math.min(1000, Math.max(1, Number(c.req.query("limit")) || 1000));
		const page = await storageCall("list", () =>
			c.env.FILES.list({
				limit,
				include: ["httpMetadata", "customMetadata"],
				...(cursor && { cursor }),
			}),
		);
		return c.json({
			objects: page.objects.map((o) => ({
				key: o.key,
				size: o.size,
				uploaded: o.uploaded.toISOString(),
				httpMetadata: o.httpMetadata ?? {},
				customMetadata: o.customMetadata ?? {},
			})),
			cursor: page.truncated ? page.cursor : null,
		});
	})
	.get(`${ADMIN_PREFIX}/files/:key{.+}`, async (c) => {
		const key = keyParam(c, "path");
		const object = await storageCall("get", () => c.env.FILES.get(key));
		if (!object) throw new ApiError(404, "NOT_FOUND", "No such object.");
		return new Response(object.body, {
			headers: {
				"content-type": "application/octet-stream",
				"content-length": String(object.size),
				[OBJECT_META_HEADER]: JSON.stringify({
					httpMetadata: object.httpMetadata ?? {},
					customMetadata: object.customMetadata ?? {},
				}),
			},
		});
	})
	.put(`${ADMIN_PREFIX}/files/:key{.+}`, async (c) => {
		const key = keyParam(c, "path");
		const size = contentLength(c);
		const meta = objectMeta(c);
		const body = c.req.raw.body;
		const stored = await storageCall(
			"put",
			() => c.env.FILES.put(key, body === null || size === 0 ? new Uint8Array(0) : body, meta),
			transferTimeoutMs(size),
		);
		if (!stored) throw new ApiError(409, "CONFLICT", "The object was not stored.");
		return c.json({ key, size: stored.size }, 201);
	})
	.post(`${ADMIN_PREFIX}/uploads`, async (c) => {
		const key = keyParam(c, "query");
		const meta = objectMeta(c);
		const upload = await storageCall("create multipart upload", () => c.env.FILES.createMultipartUpload(key, meta));
		return c.json({ key, uploadId: upload.uploadId }, 201);
	})
	.put(`${ADMIN_PREFIX}/uploads/:uploadId/parts/:part`, async (c) => {
		const key = keyParam(c, "query");
		const partNumber = Number(c.req.param("part"));
		if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
			throw new ApiError(400, "VALIDATION_FAILED", "Parts are numbered 1 to 10000.");
		}
		const size = contentLength(c);
		const body = c.req.raw.body;
		const part = await storageCall(
			"upload part",
			() =>
				c.env.FILES.resumeMultipartUpload(key, c.req.param("uploadId")).uploadPart(
					partNumber,
					body === null || size === 0 ? new Uint8Array(0) : body,
				),
			transferTimeoutMs(size),
		);
		return c.json(part);
	})
	.post(`${ADMIN_PREFIX}/uploads/:uploadId/complete`, pageLimit(), async (c) => {
		const key = keyParam(c, "query");
		const body = (await c.req.json().catch(() => null)) as { parts?: R2UploadedPart[] } | null;
		const parts = body?.parts;
		if (!Array.isArray(parts) || parts.length === 0) {
			throw new ApiError(400, "VALIDATION_FAILED", "Expected {parts: [{partNumber, etag}]}.");
		}
		const object = await storageCall("complete multipart upload", () =>
			c.env.FILES.resumeMultipartUpload(key, c.req.param("uploadId")).complete(parts),
		);
		return c.json({ key, size: object.size }, 201);
	});
