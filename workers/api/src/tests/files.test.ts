import { createExecutionContext, createScheduledController, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { files } from "../db/schema/index.ts";
import { expireUploads } from "../files/cleanup.ts";
import { DEFAULT_PART_SIZE_BYTES } from "../files/limits.ts";
import { setQuotaOverride } from "../files/quota.ts";
import { objectKey, userPrefix } from "../files/storage.ts";
import worker from "../index.ts";
import { call, randomIp, type SignedIn, signUp, withDb } from "./helpers.ts";
import { createGroup } from "./sockets.ts";

const MiB = 1024 * 1024;
const PART = DEFAULT_PART_SIZE_BYTES;

type ErrorReply = { error: { code: string; message: string; details?: unknown } };
interface FileInfo {
	id: string;
	ownerId: string;
	conversationId: string | null;
	size: number;
	contentType: string;
	state: "pending" | "complete";
	expiresAt: string | null;
}
type Upload =
	| { method: "single"; url: string; completeUrl: string; expiresAt: string }
	| {
			method: "multipart";
			partSize: number;
			partCount: number;
			lastPartSize: number;
			partUrl: string;
			partsUrl: string;
			completeUrl: string;
			expiresAt: string;
	  };
type Created = { file: FileInfo; upload: Upload };
type Usage = { usedBytes: number; reservedBytes: number; quotaBytes: number; pendingUploads: number };

/** Deterministic bytes (xorshift32), so a round trip can be checked by digest. */
function bytes(size: number, seed = 1): Uint8Array {
	const out = new Uint8Array(size);
	const words = new Uint32Array(out.buffer, 0, Math.floor(size / 4));
	let x = seed >>> 0 || 1;
	for (let i = 0; i < words.length; i++) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		words[i] = x >>> 0;
	}
	for (let i = words.length * 4; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
	return out;
}

async function sha256(data: ArrayBuffer | Uint8Array): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
	return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function request(
	path: string,
	user: SignedIn,
	init: { method?: string; body?: Uint8Array; headers?: Record<string, string> } = {},
): Request {
	return new Request(`http://api.test${path}`, {
		method: init.method ?? "GET",
		headers: {
			authorization: `Bearer ${user.accessToken}`,
			"cf-connecting-ip": randomIp(),
			// Set here too, for requests handed to worker.fetch directly rather than sent.
			...(init.body !== undefined && { "content-length": String(init.body.length) }),
			...init.headers,
		},
		...(init.body !== undefined && { body: init.body }),
	});
}

function send(path: string, user: SignedIn, init: Parameters<typeof request>[2] = {}): Promise<Response> {
	return SELF.fetch(request(path, user, init));
}

/** Calls the worker with some bindings replaced (limits, a failing bucket). */
async function fetchWith(overrides: Partial<typeof env>, req: Request): Promise<Response> {
	const ctx = createExecutionContext();
	const res = await worker.fetch(req, { ...env, ...overrides }, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

async function create(user: SignedIn, size: number, extra: Record<string, unknown> = {}) {
	return call<Created & ErrorReply>("/v1/files", {
		token: user.accessToken,
		body: { size, contentType: "application/octet-stream", ...extra },
	});
}

async function json<T>(res: Response): Promise<T> {
	return (await res.json()) as T;
}

async function putPart(user: SignedIn, created: Created, n: number, data: Uint8Array): Promise<Response> {
	const upload = created.upload;
	if (upload.method !== "multipart") throw new Error("not multipart");
	const start = (n - 1) * upload.partSize;
	const end = n === upload.partCount ? data.length : start + upload.partSize;
	return send(upload.partUrl.replace("{partNumber}", String(n)), user, {
		method: "PUT",
		body: data.subarray(start, end),
	});
}

/** Uploads `data` the way the create answer says; returns the file id. */
async function upload(user: SignedIn, data: Uint8Array, created?: Created): Promise<string> {
	let answer = created;
	if (!answer) {
		const res = await create(user, data.length);
		expect(res.status, JSON.stringify(res.body)).toBe(201);
		answer = res.body;
	}
	const { upload } = answer;
	if (upload.method === "single") {
		const put = await send(upload.url, user, { method: "PUT", body: data });
		expect(put.status, await put.clone().text()).toBe(200);
		expect((await json<{ file: FileInfo }>(put)).file.state).toBe("complete");
	} else {
		for (let n = 1; n <= upload.partCount; n++) {
			const put = await putPart(user, answer, n, data);
			expect(put.status, await put.clone().text()).toBe(200);
		}
	}
	const done = await send(upload.completeUrl, user, { method: "POST" });
	expect(done.status, await done.clone().text()).toBe(200);
	const file = (await json<{ file: FileInfo }>(done)).file;
	expect(file).toMatchObject({ state: "complete", size: data.length, expiresAt: null });
	return answer.file.id;
}

async function expectRoundTrip(user: SignedIn, id: string, data: Uint8Array): Promise<Response> {
	const res = await send(`/v1/files/${id}/content`, user);
	expect(res.status).toBe(200);
	const body = await res.arrayBuffer();
	expect(body.byteLength).toBe(data.length);
	expect(await sha256(body)).toBe(await sha256(data));
	return res;
}

async function usage(user: SignedIn): Promise<Usage> {
	const res = await call<Usage>("/v1/storage/usage", { token: user.accessToken });
	expect(res.status).toBe(200);
	return res.body;
}

describe("files: contract", () => {
	it("the OpenAPI document lists every file route", async () => {
		const res = await SELF.fetch("http://api.test/openapi.json");
		const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
		expect(Object.keys(doc.paths["/v1/files"] ?? {})).toEqual(["post"]);
		expect(Object.keys(doc.paths["/v1/files/{id}"] ?? {}).sort()).toEqual(["delete", "get"]);
		expect(Object.keys(doc.paths["/v1/files/{id}/content"] ?? {}).sort()).toEqual(["get", "put"]);
		expect(Object.keys(doc.paths["/v1/files/{id}/parts/{partNumber}"] ?? {})).toEqual(["put"]);
		expect(Object.keys(doc.paths["/v1/files/{id}/parts"] ?? {})).toEqual(["get"]);
		expect(Object.keys(doc.paths["/v1/files/{id}/complete"] ?? {})).toEqual(["post"]);
		expect(Object.keys(doc.paths["/v1/storage/usage"] ?? {})).toEqual(["get"]);
	});
});

describe("files: round trips", () => {
	for (const [label, size] of [
		["0 B", 0],
		["1 B", 1],
		["exactly one part", PART],
		["one part + 1 B", PART + 1],
	] as const) {
		it(`stores and returns ${label} byte for byte`, async () => {
			const user = await signUp();
			const data = bytes(size, size + 7);
			const created = await create(user, size);
			expect(created.status).toBe(201);
			expect(created.body.file).toMatchObject({ size, state: "pending", ownerId: user.id, conversationId: null });
			expect(created.body.upload.method).toBe(size > PART ? "multipart" : "single");
			if (created.body.upload.method === "multipart") {
				expect(created.body.upload).toMatchObject({ partSize: PART, partCount: 2, lastPartSize: 1 });
			}
			const id = await upload(user, data, created.body);
			const res = await expectRoundTrip(user, id, data);
			expect(res.headers.get("content-disposition")).toMatch(/^attachment/);
			expect(res.headers.get("x-content-type-options")).toBe("nosniff");
			expect(res.headers.get("accept-ranges")).toBe("bytes");
			expect(await usage(user)).toMatchObject({ usedBytes: size, reservedBytes: 0, pendingUploads: 0 });
		});
	}

	it("exactly one part as a multipart upload (threshold 0)", async () => {
		const user = await signUp();
		const res = await fetchWith(
			{ MULTIPART_THRESHOLD_BYTES: "0" },
			request("/v1/files", user, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: new TextEncoder().encode(JSON.stringify({ size: PART, contentType: "application/octet-stream" })),
			}),
		);
		expect(res.status).toBe(201);
		const created = await json<Created>(res);
		expect(created.upload).toMatchObject({ method: "multipart", partCount: 1, lastPartSize: PART });
		const data = bytes(PART, 99);
		await expectRoundTrip(user, await upload(user, data, created), data);
	});

	it("a 50 MiB file in parts", { timeout: 120_000 }, async () => {
		const user = await signUp();
		const size = 50 * MiB;
		const data = bytes(size, 50);
		const created = await create(user, size);
		expect(created.body.upload).toMatchObject({ method: "multipart", partCount: Math.ceil(size / PART) });
		const id = await upload(user, data, created.body);
		await expectRoundTrip(user, id, data);
		expect((await usage(user)).usedBytes).toBe(size);
	});

	it("serves risky types as application/octet-stream, never inline", async () => {
		const user = await signUp();
		const data = new TextEncoder().encode("<script>alert(1)</script>");
		const created = await call<Created>("/v1/files", {
			token: user.accessToken,
			body: { size: data.length, contentType: "text/html" },
		});
		expect(created.status).toBe(201);
		expect(created.body.file.contentType).toBe("text/html");
		const res = await expectRoundTrip(user, await upload(user, data, created.body), data);
		expect(res.headers.get("content-type")).toBe("application/octet-stream");
		expect(res.headers.get("content-disposition")).toMatch(/^attachment/);

		const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
		const image = await call<Created>("/v1/files", {
			token: user.accessToken,
			body: { size: png.length, contentType: "image/png" },
		});
		const served = await expectRoundTrip(user, await upload(user, png, image.body), png);
		expect(served.headers.get("content-type")).toBe("image/png");
		expect(served.headers.get("content-disposition")).toMatch(/^attachment/);
	});
});

describe("files: resumable multipart", () => {
	it("resumes after a dropped part: list what arrived, send only the rest, complete", async () => {
		const user = await signUp();
		const size = 2 * PART + 1234;
		const data = bytes(size, 3);
		const created = (await create(user, size)).body;
		expect(created.upload).toMatchObject({ method: "multipart", partCount: 3 });
		expect((await putPart(user, created, 1, data)).status).toBe(200);
		// Part 2 is "dropped": the connection broke, nothing arrived.
		expect((await putPart(user, created, 3, data)).status).toBe(200);

		const status = await send(`/v1/files/${created.file.id}/parts`, user);
		expect(status.status).toBe(200);
		const body = await json<{ parts: Array<{ partNumber: number; size: number }>; missing: number[] }>(status);
		expect(body.parts.map((p) => [p.partNumber, p.size])).toEqual([
			[1, PART],
			[3, 1234],
		]);
		expect(body.missing).toEqual([2]);

		const early = await send(`/v1/files/${created.file.id}/complete`, user, { method: "POST" });
		expect(early.status).toBe(409);
		expect((await json<ErrorReply>(early)).error.code).toBe("UPLOAD_INCOMPLETE");

		// A part sent again replaces the earlier copy.
		expect((await putPart(user, created, 1, data)).status).toBe(200);
		expect((await putPart(user, created, 2, data)).status).toBe(200);
		const done = await send(`/v1/files/${created.file.id}/complete`, user, { method: "POST" });
		expect(done.status).toBe(200);
		await expectRoundTrip(user, created.file.id, data);
		// Completing again is harmless.
		expect((await send(`/v1/files/${created.file.id}/complete`, user, { method: "POST" })).status).toBe(200);
	});

	it("refuses bytes that do not match the declaration, and serves nothing", async () => {
		const user = await signUp();
		// Single PUT with the wrong length.
		const small = (await create(user, 100)).body;
		const wrong = await send(`/v1/files/${small.file.id}/content`, user, { method: "PUT", body: bytes(99) });
		expect(wrong.status).toBe(400);
		expect((await json<ErrorReply>(wrong)).error.code).toBe("SIZE_MISMATCH");
		const nothing = await send(`/v1/files/${small.file.id}/content`, user);
		expect(nothing.status).toBe(409);
		expect((await json<ErrorReply>(nothing)).error.code).toBe("UPLOAD_INCOMPLETE");
		expect(await env.FILES.head(objectKey(user.id, small.file.id))).toBeNull();

		// A part of the wrong size, a part number beyond the plan.
		const size = PART + 10;
		const data = bytes(size, 5);
		const big = (await create(user, size)).body;
		const badPart = await send(`/v1/files/${big.file.id}/parts/2`, user, { method: "PUT", body: bytes(11) });
		expect(badPart.status).toBe(400);
		expect((await json<ErrorReply>(badPart)).error.code).toBe("SIZE_MISMATCH");
		expect((await send(`/v1/files/${big.file.id}/parts/3`, user, { method: "PUT", body: bytes(1) })).status).toBe(400);

		// Complete with a part missing: refused, nothing served, still pending.
		expect((await putPart(user, big, 1, data)).status).toBe(200);
		const complete = await send(`/v1/files/${big.file.id}/complete`, user, { method: "POST" });
		expect(complete.status).toBe(409);
		const error = (await json<ErrorReply>(complete)).error;
		expect(error.code).toBe("UPLOAD_INCOMPLETE");
		expect(error.details).toEqual({ missing: [2] });
		expect((await send(`/v1/files/${big.file.id}/content`, user)).status).toBe(409);
		const meta = await call<{ file: FileInfo; upload?: Upload }>(`/v1/files/${big.file.id}`, {
			token: user.accessToken,
		});
		expect(meta.body.file.state).toBe("pending");
		expect(meta.body.upload?.method).toBe("multipart");
		expect(await env.FILES.head(objectKey(user.id, big.file.id))).toBeNull();
	});

	it("needs Content-Length on streamed bodies", async () => {
		const user = await signUp();
		const created = (await create(user, 4)).body;
		const stream = new ReadableStream({
			start(controller) {
				controller.enqueue(new Uint8Array([1, 2, 3, 4]));
				controller.close();
			},
		});
		const res = await SELF.fetch(`http://api.test/v1/files/${created.file.id}/content`, {
			method: "PUT",
			headers: { authorization: `Bearer ${user.accessToken}` },
			body: stream,
		});
		expect(res.status).toBe(411);
		expect((await json<ErrorReply>(res)).error.code).toBe("LENGTH_REQUIRED");
	});
});

describe("files: quota and limits", () => {
	it("20 parallel creates racing the quota never exceed it", async () => {
		const user = await signUp();
		const quota = 10 * MiB;
		const size = 3 * MiB;
		await withDb((db) => setQuotaOverride(db, user.id, quota));
		const results = await Promise.all(Array.from({ length: 20 }, () => create(user, size)));
		const accepted = results.filter((r) => r.status === 201);
		const refused = results.filter((r) => r.status !== 201);
		expect(accepted.length * size).toBeLessThanOrEqual(quota);
		expect(accepted.length).toBe(Math.floor(quota / size));
		for (const r of refused) {
			expect(r.status).toBe(413);
			expect(r.body.error.code).toBe("QUOTA_EXCEEDED");
		}
		expect(await usage(user)).toEqual({
			usedBytes: 0,
			reservedBytes: accepted.length * size,
			quotaBytes: quota,
			pendingUploads: accepted.length,
		});
	});

	it("refuses too large, outside the quota, disallowed types and too many pending uploads", async () => {
		const user = await signUp();
		const tooLarge = await create(user, 3 * 1024 * MiB);
		expect(tooLarge.status).toBe(413);
		expect(tooLarge.body.error.code).toBe("TOO_LARGE");

		await withDb((db) => setQuotaOverride(db, user.id, 1000));
		const over = await create(user, 1001);
		expect(over.status).toBe(413);
		expect(over.body.error.code).toBe("QUOTA_EXCEEDED");
		expect((await create(user, 1000)).status).toBe(201);

		const bad = await call<ErrorReply>("/v1/files", {
			token: user.accessToken,
			body: { size: -1, contentType: "not a type" },
		});
		expect(bad.status).toBe(400);
		expect(bad.body.error.code).toBe("VALIDATION_FAILED");

		const other = await signUp();
		const typed = (contentType: string, overrides: Partial<typeof env>) =>
			fetchWith(
				overrides,
				request("/v1/files", other, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: new TextEncoder().encode(JSON.stringify({ size: 10, contentType })),
				}),
			);
		const refused = await typed("application/pdf", { ALLOWED_CONTENT_TYPES: "image/*, audio/ogg" });
		expect(refused.status).toBe(415);
		expect((await json<ErrorReply>(refused)).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
		expect((await typed("image/png", { ALLOWED_CONTENT_TYPES: "image/*, audio/ogg" })).status).toBe(201);
		expect((await typed("audio/ogg", { ALLOWED_CONTENT_TYPES: "image/*, audio/ogg" })).status).toBe(201);
		const third = await typed("image/png", { MAX_PENDING_UPLOADS: "2" });
		expect(third.status).toBe(429);
		expect((await json<ErrorReply>(third)).error.code).toBe("TOO_MANY_PENDING_UPLOADS");

		const misconfigured = await typed("image/png", { PART_SIZE_BYTES: "1024" });
		expect(misconfigured.status).toBe(500);
		expect((await json<ErrorReply>(misconfigured)).error.message).toContain("PART_SIZE_BYTES");
	});

	it("DELETE releases the quota and removes the object", async () => {
		const user = await signUp();
		const data = bytes(5000, 8);
		const id = await upload(user, data);
		expect((await usage(user)).usedBytes).toBe(5000);
		const pending = (await create(user, PART + 1)).body;
		expect((await putPart(user, pending, 1, bytes(PART + 1))).status).toBe(200);
		expect(await usage(user)).toMatchObject({ usedBytes: 5000, reservedBytes: PART + 1, pendingUploads: 1 });

		expect((await send(`/v1/files/${id}`, user, { method: "DELETE" })).status).toBe(204);
		expect((await send(`/v1/files/${pending.file.id}`, user, { method: "DELETE" })).status).toBe(204);
		expect(await usage(user)).toMatchObject({ usedBytes: 0, reservedBytes: 0, pendingUploads: 0 });
		expect(await env.FILES.head(objectKey(user.id, id))).toBeNull();
		expect((await send(`/v1/files/${id}`, user)).status).toBe(404);
		expect((await send(`/v1/files/${id}`, user, { method: "DELETE" })).status).toBe(404);
	});

	it("a storage outage is a 503 with Retry-After, and nothing changes", async () => {
		const user = await signUp();
		const created = (await create(user, 10)).body;
		const fail = () => Promise.reject(new Error("network connection lost"));
		const down = new Proxy({} as R2Bucket, { get: () => fail });
		const res = await fetchWith(
			{ FILES: down },
			request(`/v1/files/${created.file.id}/content`, user, { method: "PUT", body: bytes(10) }),
		);
		expect(res.status).toBe(503);
		expect(res.headers.get("retry-after")).toBeTruthy();
		expect((await json<ErrorReply>(res)).error.code).toBe("SERVICE_UNAVAILABLE");
		expect(await usage(user)).toMatchObject({ reservedBytes: 10, usedBytes: 0 });
		const multipart = await fetchWith(
			{ FILES: down },
			request("/v1/files", user, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: new TextEncoder().encode(JSON.stringify({ size: PART + 1, contentType: "image/png" })),
			}),
		);
		expect(multipart.status).toBe(503);
		expect(await usage(user)).toMatchObject({ reservedBytes: 10, pendingUploads: 1 });
		// Once storage is back, the same upload goes through.
		expect((await send(`/v1/files/${created.file.id}/content`, user, { method: "PUT", body: bytes(10) })).status).toBe(
			200,
		);
	});
});

describe("files: downloads", () => {
	it("Range: one range → 206 with Content-Range; unsatisfiable → 416; If-None-Match → 304", async () => {
		const user = await signUp();
		const data = bytes(1000, 11);
		const id = await upload(user, data);
		const get = (headers: Record<string, string>) => send(`/v1/files/${id}/content`, user, { headers });

		const part = await get({ range: "bytes=10-19" });
		expect(part.status).toBe(206);
		expect(part.headers.get("content-range")).toBe("bytes 10-19/1000");
		expect(part.headers.get("content-length")).toBe("10");
		expect(new Uint8Array(await part.arrayBuffer())).toEqual(data.slice(10, 20));

		const open = await get({ range: "bytes=990-" });
		expect(open.status).toBe(206);
		expect(open.headers.get("content-range")).toBe("bytes 990-999/1000");
		expect(new Uint8Array(await open.arrayBuffer())).toEqual(data.slice(990));

		const suffix = await get({ range: "bytes=-5" });
		expect(suffix.status).toBe(206);
		expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(data.slice(995));

		const beyond = await get({ range: "bytes=995-5000" });
		expect(beyond.status).toBe(206);
		expect(beyond.headers.get("content-range")).toBe("bytes 995-999/1000");
		await beyond.arrayBuffer();

		const unsatisfiable = await get({ range: "bytes=1000-" });
		expect(unsatisfiable.status).toBe(416);
		expect(unsatisfiable.headers.get("content-range")).toBe("bytes */1000");
		expect((await json<ErrorReply>(unsatisfiable)).error.code).toBe("RANGE_NOT_SATISFIABLE");

		// Several ranges: served whole (a server may ignore Range).
		const many = await get({ range: "bytes=0-1,5-6" });
		expect(many.status).toBe(200);
		expect((await many.arrayBuffer()).byteLength).toBe(1000);

		const full = await get({});
		const etag = full.headers.get("etag");
		await full.arrayBuffer();
		expect(etag).toMatch(/^"[^"]+"$/);
		const cached = await get({ "if-none-match": etag as string });
		expect(cached.status).toBe(304);
		expect(cached.headers.get("etag")).toBe(etag);
		expect(await cached.text()).toBe("");
		const weak = await get({ "if-none-match": `"other", W/${etag}` });
		expect(weak.status).toBe(304);
		const changed = await get({ "if-none-match": '"something-else"' });
		expect(changed.status).toBe(200);
		await changed.arrayBuffer();

		// If-Range with a stale validator: the whole file.
		const stale = await get({ range: "bytes=0-9", "if-range": '"stale"' });
		expect(stale.status).toBe(200);
		await stale.arrayBuffer();
		const fresh = await get({ range: "bytes=0-9", "if-range": etag as string });
		expect(fresh.status).toBe(206);
		await fresh.arrayBuffer();
	});

	it("an empty file has no satisfiable range", async () => {
		const user = await signUp();
		const id = await upload(user, new Uint8Array(0));
		const res = await send(`/v1/files/${id}/content`, user, { headers: { range: "bytes=0-" } });
		expect(res.status).toBe(416);
		expect(res.headers.get("content-range")).toBe("bytes */0");
	});

	it("non-members get 404 for metadata and content; members of the conversation get the file", async () => {
		const owner = await signUp();
		const member = await signUp();
		const outsider = await signUp();
		const conversationId = await createGroup(owner.accessToken, [member.id]);

		const notMine = await create(outsider, 10, { conversationId });
		expect(notMine.status).toBe(404);

		const created = (await create(owner, 64, { conversationId })).body;
		expect(created.file.conversationId).toBe(conversationId);
		const data = bytes(64, 21);
		const id = await upload(owner, data, created);

		for (const path of [`/v1/files/${id}`, `/v1/files/${id}/content`]) {
			const res = await send(path, outsider);
			expect(res.status).toBe(404);
			expect((await json<ErrorReply>(res)).error.code).toBe("NOT_FOUND");
		}
		// Same answer as for a file that does not exist: no existence leak.
		const missing = await send("/v1/files/fil_aaaaaaaaaaaaaaaaaaaa", outsider);
		expect(missing.status).toBe(404);
		await missing.arrayBuffer();

		const meta = await call<{ file: FileInfo; upload?: Upload }>(`/v1/files/${id}`, { token: member.accessToken });
		expect(meta.status).toBe(200);
		expect(meta.body.file).toMatchObject({ id, ownerId: owner.id, state: "complete", size: 64 });
		expect(meta.body.upload).toBeUndefined();
		await expectRoundTrip(member, id, data);
		// Members read; only the owner deletes.
		expect((await send(`/v1/files/${id}`, member, { method: "DELETE" })).status).toBe(403);

		// Leaving the conversation ends access.
		expect(
			(
				await call(`/v1/conversations/${conversationId}/members/${member.id}`, {
					method: "DELETE",
					token: member.accessToken,
				})
			).status,
		).toBe(204);
		expect((await send(`/v1/files/${id}/content`, member)).status).toBe(404);
		// Files without a conversation are the owner's alone.
		const privateId = await upload(owner, bytes(3));
		expect((await send(`/v1/files/${privateId}`, member)).status).toBe(404);
	});
});

describe("files: expiry and deletion", () => {
	it("an unfinished upload is aborted after its expiry and its reservation released", async () => {
		const user = await signUp();
		const size = PART + 5;
		const created = (await create(user, size)).body;
		expect((await putPart(user, created, 1, bytes(size))).status).toBe(200);
		const single = (await create(user, 7)).body;
		expect(await usage(user)).toMatchObject({ reservedBytes: size + 7, pendingUploads: 2 });

		const [before] = await withDb((db) => db.select().from(files).where(eq(files.id, created.file.id)));
		const uploadId = before?.uploadId as string;
		expect(uploadId).toBeTruthy();
		const past = new Date(Date.now() - 1000);
		await withDb((db) => db.update(files).set({ expiresAt: past }).where(eq(files.id, created.file.id)));
		// Expired but not yet swept: no more bytes are taken.
		const late = await putPart(user, created, 2, bytes(size));
		expect(late.status).toBe(410);
		expect((await json<ErrorReply>(late)).error.code).toBe("UPLOAD_EXPIRED");

		expect(await expireUploads(env)).toBeGreaterThanOrEqual(1);
		expect(await usage(user)).toMatchObject({ reservedBytes: 7, pendingUploads: 1 });
		expect((await send(`/v1/files/${created.file.id}`, user)).status).toBe(404);
		// The multipart upload in R2 was aborted: its parts can no longer be assembled.
		const key = objectKey(user.id, created.file.id);
		await expect(env.FILES.resumeMultipartUpload(key, uploadId).complete([])).rejects.toThrow();
		expect(await env.FILES.head(key)).toBeNull();

		// The scheduled handler runs the same sweep.
		await withDb((db) => db.update(files).set({ expiresAt: past }).where(eq(files.id, single.file.id)));
		const ctx = createExecutionContext();
		await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env, ctx);
		await waitOnExecutionContext(ctx);
		expect(await usage(user)).toMatchObject({ reservedBytes: 0, usedBytes: 0, pendingUploads: 0 });
	});

	it("deleting the account deletes its objects in R2", async () => {
		const user = await signUp();
		const done = await upload(user, bytes(2048, 4));
		const pending = (await create(user, PART + 1)).body;
		expect((await putPart(user, pending, 1, bytes(PART + 1))).status).toBe(200);
		const listed = await env.FILES.list({ prefix: userPrefix(user.id) });
		expect(listed.objects.map((o) => o.key)).toContain(objectKey(user.id, done));

		expect((await call("/v1/users/me", { method: "DELETE", token: user.accessToken })).status).toBe(204);
		expect((await env.FILES.list({ prefix: userPrefix(user.id) })).objects).toEqual([]);
		const rows = await withDb((db) => db.select().from(files).where(eq(files.ownerId, user.id)));
		expect(rows).toEqual([]);
	});

	it("deleting a conversation (its last member leaves) deletes its files", async () => {
		const owner = await signUp();
		const conversationId = await createGroup(owner.accessToken, [owner.id], "alone");
		const attached = (await create(owner, 32, { conversationId })).body;
		const id = await upload(owner, bytes(32), attached);
		const kept = await upload(owner, bytes(16));
		expect(await env.FILES.head(objectKey(owner.id, id))).not.toBeNull();
		const leave = await call(`/v1/conversations/${conversationId}/members/${owner.id}`, {
			method: "DELETE",
			token: owner.accessToken,
		});
		expect(leave.status).toBe(204);
		expect(await env.FILES.head(objectKey(owner.id, id))).toBeNull();
		expect((await send(`/v1/files/${id}`, owner)).status).toBe(404);
		expect((await send(`/v1/files/${kept}`, owner)).status).toBe(200);
		expect((await usage(owner)).usedBytes).toBe(16);
	});
});
