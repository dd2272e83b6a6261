// Downloads: a single byte range (206 / 416), ETag with If-None-Match (304) and
// If-Range, always as an attachment with nosniff, never as renderable HTML.
import type { Env } from "../env.ts";
import { ApiError } from "../lib/api-error.ts";
import type { FileRow } from "./model.ts";
import { getObject } from "./storage.ts";

/**
 * Types served under their own name; anything else (HTML, SVG, XML, scripts,
 * text…) goes out as application/octet-stream so no browser renders it.
 */
const SAFE_CONTENT_TYPE =
	/^(image\/(png|jpeg|gif|webp|avif|heic|heif|bmp)|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+|application\/(octet-stream|zip|gzip|pdf))$/;

export function servedContentType(contentType: string): string {
	return SAFE_CONTENT_TYPE.test(contentType) ? contentType : "application/octet-stream";
}

export type ByteRange = { offset: number; length: number };

/**
 * The range a `Range` header asks for: a range, "unsatisfiable", or undefined
 * when the whole body should be sent (no header, not bytes, malformed, or
 * several ranges — all of which RFC 9110 lets a server ignore).
 */
export function parseRange(header: string | null, size: number): ByteRange | "unsatisfiable" | undefined {
	if (header === null) return undefined;
	const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
	if (!m) return undefined;
	const [, first = "", last = ""] = m;
	if (first === "" && last === "") return undefined;
	if (first === "") {
		// Suffix: the last N bytes.
		const n = Number(last);
		if (n === 0 || size === 0) return "unsatisfiable";
		const length = Math.min(n, size);
		return { offset: size - length, length };
	}
	const start = Number(first);
	const end = last === "" ? size - 1 : Number(last);
	if (last !== "" && end < start) return undefined;
	if (start >= size) return "unsatisfiable";
	return { offset: start, length: Math.min(end, size - 1) - start + 1 };
}

/** Weak comparison of an If-None-Match list against our etag. */
function etagMatches(header: string, etag: string): boolean {
	const bare = (t: string) => t.trim().replace(/^W\//, "");
	return header.split(",").some((t) => t.trim() === "*" || bare(t) === etag);
}

export async function serveContent(env: Env, row: FileRow, request: Request): Promise<Response> {
	if (row.state !== "complete" || row.etag === null) {
		throw new ApiError(409, "UPLOAD_INCOMPLETE", "This file's upload has not completed; there is nothing to download.");
	}
	const etag = `"${row.etag}"`;
	const headers = new Headers({
		etag,
		"accept-ranges": "bytes",
		"cache-control": "private, no-cache",
		"content-disposition": `attachment; filename="${row.id}"`,
		"x-content-type-options": "nosniff",
		"content-security-policy": "default-src 'none'; sandbox",
	});
	const ifNoneMatch = request.headers.get("if-none-match");
	if (ifNoneMatch !== null && etagMatches(ifNoneMatch, etag)) {
		return new Response(null, { status: 304, headers });
	}
	const ifRange = request.headers.get("if-range");
	let range =
		ifRange === null || ifRange.trim() === etag ? parseRange(request.headers.get("range"), row.size) : undefined;
	if (range === "unsatisfiable") {
		throw new ApiError(416, "RANGE_NOT_SATISFIABLE", `The file has ${row.size} bytes.`, {
			headers: { "content-range": `bytes */${row.size}` },
		});
	}
	if (range && range.offset === 0 && range.length === row.size) range = undefined;
	const object = await getObject(env, row.r2Key, range);
	if (!object) throw new ApiError(404, "NOT_FOUND", "No such file.");
	headers.set("content-type", servedContentType(row.contentType));
	headers.set("content-length", String(range ? range.length : row.size));
	if (range) headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${row.size}`);
	return new Response(object.body, { status: range ? 206 : 200, headers });
}
