import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TablePage } from "../../../chat-room/src/snapshot.ts";
import worker from "../index.ts";
import { OBJECT_META_HEADER, tokenMatches } from "../routes/admin/index.ts";
import { call, signUp, unique } from "./helpers.ts";
import { b64, createGroup } from "./sockets.ts";

const token = () => env.ADMIN_TOKEN ?? "";

function admin(path: string, init: RequestInit = {}) {
	const headers = new Headers(init.headers);
	headers.set("authorization", `Bearer ${token()}`);
	return SELF.fetch(`http://api.test/admin/v1${path}`, { ...init, headers });
}

async function adminJson<T>(path: string, init: RequestInit = {}): Promise<T> {
	const res = await admin(path, init);
	if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
	return (await res.json()) as T;
}

async function exportObject(kind: string, name: string): Promise<TablePage[]> {
	const { tables } = await adminJson<{ tables: string[] }>(`/objects/${kind}/${name}/tables`);
	const pages: TablePage[] = [];
	for (const table of tables) {
		let after = 0;
		for (;;) {
			const page = await adminJson<TablePage>(`/objects/${kind}/${name}/tables/${table}?after=${after}`);
			pages.push(page);
			if (page.next === null) break;
			after = page.next;
		}
	}
	return pages;
}

async function importObject(kind: string, name: string, pages: TablePage[]): Promise<void> {
	const seen = new Set<string>();
	for (const page of pages) {
		const first = !seen.has(page.table);
		seen.add(page.table);
		await adminJson(`/objects/${kind}/${name}/tables/${page.table}${first ? "?first=1" : ""}`, {
			method: "PUT",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(page),
		});
	}
	expect((await admin(`/objects/${kind}/${name}/restored`, { method: "POST" })).status).toBe(204);
}

describe("admin api: access", () => {
	it("does not exist without ADMIN_TOKEN, nor with a weak one", async () => {
		for (const ADMIN_TOKEN of [undefined, "short-admin-token"]) {
			const ctx = createExecutionContext();
			const res = await worker.fetch(
				new Request("http://api.test/admin/v1/files", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
				{ ...env, ADMIN_TOKEN },
				ctx,
			);
			await waitOnExecutionContext(ctx);
			expect(res.status).toBe(404);
		}
	});

	it("refuses a missing or wrong token with 401, and takes only the right one", async () => {
		expect((await SELF.fetch("http://api.test/admin/v1/files")).status).toBe(401);
		// One character off (never the same one: the random token may already end in "x").
		const right = token();
		const wrong = await SELF.fetch("http://api.test/admin/v1/files", {
			headers: { authorization: `Bearer ${right.slice(0, -1)}${right.endsWith("x") ? "y" : "x"}` },
		});
		expect(wrong.status).toBe(401);
		expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
		expect((await admin("/files")).status).toBe(200);
		// A user's access token is no admin token.
		const user = await signUp();
		const asUser = await SELF.fetch("http://api.test/admin/v1/files", {
			headers: { authorization: `Bearer ${user.accessToken}` },
		});
		expect(asUser.status).toBe(401);
	});

	it("compares tokens by digest, whatever their lengths", async () => {
		expect(await tokenMatches("a".repeat(40), "a".repeat(40))).toBe(true);
		expect(await tokenMatches("a".repeat(39), "a".repeat(40))).toBe(false);
		expect(await tokenMatches("", "a".repeat(40))).toBe(false);
	});
});

describe("admin api: Durable Object export and import", () => {
	it("restores a conversation log exactly, and the object continues from it", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		for (const n of [1, 2, 3]) {
			const sent = await call(`/v1/conversations/${id}/messages`, {
				token: a.accessToken,
				body: { clientId: `m${n}`, ciphertext: b64(`message ${n}`) },
			});
			expect(sent.status).toBe(201);
		}
		const backup = await exportObject("chat-room", id);
		expect(backup.map((p) => p.table).sort()).toEqual(["call_timeouts", "members", "messages", "meta", "welcomes"]);
		expect(backup.find((p) => p.table === "messages")?.rows).toHaveLength(3);

		// Diverge, then restore: the fourth message goes, and the next one is seq 4 again.
		await call(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "m4", ciphertext: b64("after the backup") },
		});
		await importObject("chat-room", id, backup);
		expect(await exportObject("chat-room", id)).toEqual(backup);
		const history = await call<{ messages: Array<{ seq: number; clientId: string }> }>(
			`/v1/conversations/${id}/messages`,
			{ token: a.accessToken },
		);
		expect(history.body.messages.map((m) => [m.seq, m.clientId])).toEqual([
			[1, "m1"],
			[2, "m2"],
			[3, "m3"],
		]);
		const next = await call<{ message: { seq: number } }>(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "m5", ciphertext: b64("after the restore") },
		});
		expect(next.body.message.seq).toBe(4);
	});

	it("pages long logs by rows and bytes", async () => {
		const name = `cnv_${"a".repeat(10)}${unique().replace(/[^a-z]/g, "a")}`;
		const stub = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(name));
		await runInDurableObject(stub, (_instance, state) => {
			for (let seq = 1; seq <= 1200; seq++) {
				state.storage.sql.exec(
					"INSERT INTO messages (seq, id, sender_id, client_id, ciphertext, sent_at, kind) VALUES (?, ?, 'usr_x', ?, ?, ?, 'message')",
					seq,
					`msg_${seq}`,
					`c${seq}`,
					"x".repeat(seq % 7 === 0 ? 20_000 : 10),
					seq,
				);
			}
		});
		const pages = (await exportObject("chat-room", name)).filter((p) => p.table === "messages");
		expect(pages.length).toBeGreaterThanOrEqual(3);
		expect(pages.flatMap((p) => p.rows.map((r) => r[0]))).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
		for (const page of pages) expect(JSON.stringify(page).length).toBeLessThan(2.2 * 1024 * 1024);
	});

	it("refuses unknown kinds, tables and columns with a 4xx", async () => {
		expect((await admin("/objects/rate-limiter/x/tables")).status).toBe(404);
		expect((await admin("/objects/chat-room/x/tables/nope")).status).toBe(400);
		expect((await admin("/objects/chat-room/x/tables/sqlite_master")).status).toBe(400);
		const res = await admin("/objects/chat-room/x/tables/meta?first=1", {
			method: "PUT",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ table: "meta", columns: ["key", "evil"], rows: [["a", "b"]] }),
		});
		expect(res.status).toBe(400);
	});
});

describe("admin api: R2 objects", () => {
	it("stores, lists and returns objects with their metadata", async () => {
		const key = `backup-test/${unique()}/blob`;
		const bytes = crypto.getRandomValues(new Uint8Array(4096));
		const put = await admin(`/files/${key}`, {
			method: "PUT",
			headers: {
				"content-length": String(bytes.length),
				[OBJECT_META_HEADER]: JSON.stringify({
					httpMetadata: { contentType: "application/octet-stream" },
					customMetadata: { fileId: "fil_test" },
				}),
			},
			body: bytes,
		});
		expect(put.status).toBe(201);
		let cursor: string | null = null;
		const listed: Array<{ key: string; size: number; customMetadata: Record<string, string> }> = [];
		do {
			const page: { objects: typeof listed; cursor: string | null } = await adminJson(
				`/files${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`,
			);
			listed.push(...page.objects);
			cursor = page.cursor;
		} while (cursor);
		expect(listed.find((o) => o.key === key)).toMatchObject({ size: 4096, customMetadata: { fileId: "fil_test" } });
		const got = await admin(`/files/${key}`);
		expect(got.status).toBe(200);
		expect(JSON.parse(got.headers.get(OBJECT_META_HEADER) ?? "{}")).toMatchObject({
			customMetadata: { fileId: "fil_test" },
		});
		expect(new Uint8Array(await got.arrayBuffer())).toEqual(bytes);
		expect((await admin(`/files/${key}-missing`)).status).toBe(404);
		expect((await admin(`/files/${key}`, { method: "PUT", body: "x" })).status).toBe(201);
	});

	it("restores large objects in parts", async () => {
		const key = `backup-test/${unique()}/large`;
		const first = new Uint8Array(5 * 1024 * 1024).fill(7);
		const last = new Uint8Array(1000).fill(9);
		const { uploadId } = await adminJson<{ uploadId: string }>(`/uploads?key=${encodeURIComponent(key)}`, {
			method: "POST",
		});
		const parts = [];
		for (const [n, body] of [first, last].entries()) {
			parts.push(
				await adminJson<{ partNumber: number; etag: string }>(
					`/uploads/${uploadId}/parts/${n + 1}?key=${encodeURIComponent(key)}`,
					{ method: "PUT", headers: { "content-length": String(body.length) }, body },
				),
			);
		}
		const done = await adminJson<{ size: number }>(`/uploads/${uploadId}/complete?key=${encodeURIComponent(key)}`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ parts }),
		});
		expect(done.size).toBe(first.length + last.length);
		const object = await env.FILES.get(key);
		expect(object?.size).toBe(first.length + last.length);
		await object?.arrayBuffer();
	});
});
