// A SecureConnect backup is a directory:
//
//   manifest.json                         what is inside, with row counts and checksums
//   postgres/<table>.ndjson               every public table (scripts/backup/postgres.ts)
//   r2/index.ndjson                       {key, size, sha256, httpMetadata, customMetadata} per object
//   r2/blobs/<sha256>                     object bytes, stored once per distinct content
//   durable-objects/<kind>/<name>.ndjson  the object's SQLite, one table page per line
//                                         (chat-room: conversation logs; user-channel: read cursors)
//
// R2 and Durable Objects are reached through the api's admin endpoints
// (workers/api/src/routes/admin, ADMIN_TOKEN), so the same command works
// against `npm run dev` and against production. Secrets are never in a backup:
// keep JWT_SIGNING_KEYS and PASSWORD_PEPPER elsewhere (without the pepper no
// restored password verifies). A backup holds password hashes, emails and
// ciphertext: store it encrypted and access-controlled.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { dumpPostgres, openPool, type PostgresSummary, type PostgresTarget, restorePostgres } from "./postgres.ts";

export const FORMAT = "secureconnect-backup/1";
export const OBJECT_KINDS = ["chat-room", "user-channel"] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];
/** Objects up to this size are restored in one request; larger ones in parts. */
export const SINGLE_PUT_MAX_BYTES = 64 * 1024 * 1024;
export const PART_BYTES = 32 * 1024 * 1024;
const CONCURRENCY = 4;
const JSON_TIMEOUT_MS = 60_000;
const META_HEADER = "x-sc-object";

export interface Target extends PostgresTarget {
	/** Base URL of the api, e.g. https://api.example.com or http://127.0.0.1:8787. */
	apiUrl: string;
	adminToken: string;
}

export interface Manifest {
	format: typeof FORMAT;
	createdAt: string;
	runId: string;
	postgres: PostgresSummary;
	r2: { objects: number; bytes: number };
	durableObjects: Record<ObjectKind, { objects: number; rows: number }>;
}

interface TablePage {
	table: string;
	columns: string[];
	rows: unknown[][];
	next: number | null;
}

interface IndexEntry {
	key: string;
	size: number;
	sha256: string;
	httpMetadata: Record<string, unknown>;
	customMetadata: Record<string, string>;
}

export type Log = (message: string) => void;

/** The admin api, with a request id per call (it shows in the api's logs) and retries where safe. */
export class AdminClient {
	readonly #base: string;
	readonly #token: string;
	readonly #runId: string;
	#n = 0;

	constructor(target: Pick<Target, "apiUrl" | "adminToken">, runId: string) {
		this.#base = `${target.apiUrl.replace(/\/+$/, "")}/admin/v1`;
		this.#token = target.adminToken;
		this.#runId = runId;
	}

	async fetch(path: string, init: RequestInit & { timeoutMs?: number } = {}, attempts = 3): Promise<Response> {
		const headers = new Headers(init.headers);
		headers.set("authorization", `Bearer ${this.#token}`);
		for (let attempt = 1; ; attempt++) {
			headers.set("x-request-id", `${this.#runId}-${++this.#n}`);
			try {
				const res = await fetch(`${this.#base}${path}`, {
					...init,
					headers,
					...(init.timeoutMs !== undefined && { signal: AbortSignal.timeout(init.timeoutMs) }),
				});
				if (res.status < 500 || attempt >= attempts) return res;
				await res.body?.cancel();
			} catch (error) {
				if (attempt >= attempts) throw error;
			}
			await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
		}
	}

	async json<T>(path: string, init: RequestInit = {}): Promise<T> {
		const res = await this.fetch(path, { ...init, timeoutMs: JSON_TIMEOUT_MS });
		if (!res.ok) throw new Error(`${init.method ?? "GET"} /admin/v1${path}: ${res.status} ${await res.text()}`);
		return (await res.json()) as T;
	}
}

export function newRunId(kind: "backup" | "restore"): string {
	return `${kind}-${new Date()
		.toISOString()
		.replace(/[^0-9]/g, "")
		.slice(0, 14)}-${randomBytes(3).toString("hex")}`;
}

const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/");

async function writeLines(path: string, lines: AsyncIterable<string> | Iterable<string>): Promise<number> {
	const out = createWriteStream(path, { mode: 0o600 });
	let count = 0;
	for await (const line of lines) {
		if (!out.write(`${line}\n`)) await new Promise<void>((r) => out.once("drain", () => r()));
		count++;
	}
	await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
	return count;
}

async function* readLines(path: string): AsyncGenerator<string> {
	if (!existsSync(path)) return;
	const lines = createInterface({ input: createReadStream(path, "utf8"), crlfDelay: Number.POSITIVE_INFINITY });
	for await (const line of lines) if (line.trim()) yield line;
}

async function idsFrom(path: string): Promise<string[]> {
	const ids: string[] = [];
	for await (const line of readLines(path)) ids.push((JSON.parse(line) as { id: string }).id);
	return ids;
}

/** Runs `work` over `items`, a few at a time. */
async function pool<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
			while (next < items.length) {
				const item = items[next++] as T;
				await work(item);
			}
		}),
	);
}

// ----------------------------------------------------------------- backup

async function backupObjects(admin: AdminClient, dir: string, log: Log): Promise<Manifest["r2"]> {
	const blobs = join(dir, "r2/blobs");
	await mkdir(blobs, { recursive: true, mode: 0o700 });
	const entries: IndexEntry[] = [];
	let cursor: string | null = null;
	do {
		const page: { objects: Array<Omit<IndexEntry, "sha256"> & { uploaded: string }>; cursor: string | null } =
			await admin.json(`/files${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
		await pool(page.objects, async (object) => {
			const res = await admin.fetch(`/files/${encodeKey(object.key)}`);
			if (res.status === 404) {
				await res.body?.cancel();
				log(`  r2: ${object.key} vanished during the backup; skipped`);
				return;
			}
			if (!res.ok || !res.body) throw new Error(`GET object ${object.key}: ${res.status} ${await res.text()}`);
			const meta = JSON.parse(res.headers.get(META_HEADER) ?? "{}") as Partial<IndexEntry>;
			const temp = join(blobs, `.partial-${randomBytes(8).toString("hex")}`);
			const hash = createHash("sha256");
			let size = 0;
			await pipeline(
				Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
				async function* (source: AsyncIterable<Buffer>) {
					for await (const chunk of source) {
						hash.update(chunk);
						size += chunk.length;
						yield chunk;
					}
				},
				createWriteStream(temp, { mode: 0o600 }),
			);
			if (size !== object.size) throw new Error(`object ${object.key}: got ${size} bytes, listed ${object.size}`);
			const sha256 = hash.digest("hex");
			const final = join(blobs, sha256);
			if (existsSync(final)) await rm(temp);
			else await rename(temp, final);
			entries.push({
				key: object.key,
				size,
				sha256,
				httpMetadata: meta.httpMetadata ?? object.httpMetadata ?? {},
				customMetadata: meta.customMetadata ?? object.customMetadata ?? {},
			});
		});
		cursor = page.cursor;
	} while (cursor);
	entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
	await writeLines(
		join(dir, "r2/index.ndjson"),
		entries.map((e) => JSON.stringify(e)),
	);
	return { objects: entries.length, bytes: entries.reduce((sum, e) => sum + e.size, 0) };
}

async function backupDurableObjects(
	admin: AdminClient,
	dir: string,
	names: Record<ObjectKind, string[]>,
): Promise<Manifest["durableObjects"]> {
	const summary = {} as Manifest["durableObjects"];
	for (const kind of OBJECT_KINDS) {
		const out = join(dir, "durable-objects", kind);
		await mkdir(out, { recursive: true, mode: 0o700 });
		let objects = 0;
		let rows = 0;
		await pool(names[kind], async (name) => {
			const base = `/objects/${kind}/${encodeURIComponent(name)}/tables`;
			const { tables } = await admin.json<{ tables: string[] }>(base);
			const pages: TablePage[] = [];
			for (const table of tables) {
				let after = 0;
				for (;;) {
					const page = await admin.json<TablePage>(`${base}/${table}?after=${after}`);
					pages.push(page);
					if (page.next === null) break;
					after = page.next;
				}
			}
			const count = pages.reduce((sum, p) => sum + p.rows.length, 0);
			if (count === 0) return; // never used: nothing to keep
			await writeLines(
				join(out, `${name}.ndjson`),
				pages.filter((p) => p.rows.length > 0).map((p) => JSON.stringify({ ...p, next: null })),
			);
			objects++;
			rows += count;
		});
		summary[kind] = { objects, rows };
	}
	return summary;
}

/** Writes a complete backup into `dir` (created; must be empty or absent). */
export async function backup(target: Target, dir: string, log: Log = () => {}): Promise<Manifest> {
	if (existsSync(dir) && (await readdir(dir)).length > 0) throw new Error(`${dir} is not empty`);
	await mkdir(join(dir, "postgres"), { recursive: true, mode: 0o700 });
	await chmod(dir, 0o700);
	const runId = newRunId("backup");
	const admin = new AdminClient(target, runId);
	// Fail before the long part if the admin api is off or the token is wrong.
	await admin.json("/files?limit=1");
	log(`backup ${runId} → ${dir}`);

	const db = openPool(target);
	let postgres: PostgresSummary;
	try {
		postgres = await dumpPostgres(db, join(dir, "postgres"));
	} finally {
		await db.end();
	}
	const rowCount = Object.values(postgres.tables).reduce((sum, t) => sum + t.rows, 0);
	log(`  postgres: ${Object.keys(postgres.tables).length} tables, ${rowCount} rows`);

	const r2 = await backupObjects(admin, dir, log);
	log(`  r2: ${r2.objects} objects, ${r2.bytes} bytes`);

	const durableObjects = await backupDurableObjects(admin, dir, {
		"chat-room": await idsFrom(join(dir, "postgres/conversations.ndjson")),
		"user-channel": await idsFrom(join(dir, "postgres/users.ndjson")),
	});
	for (const kind of OBJECT_KINDS) {
		log(`  durable objects ${kind}: ${durableObjects[kind].objects} with state, ${durableObjects[kind].rows} rows`);
	}

	const manifest: Manifest = {
		format: FORMAT,
		createdAt: new Date().toISOString(),
		runId,
		postgres,
		r2,
		durableObjects,
	};
	await writeFile(join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
	return manifest;
}

// ----------------------------------------------------------------- restore

async function restoreObject(admin: AdminClient, dir: string, entry: IndexEntry): Promise<void> {
	const path = join(dir, "r2/blobs", entry.sha256);
	const meta = JSON.stringify({ httpMetadata: entry.httpMetadata, customMetadata: entry.customMetadata });
	if ((await stat(path)).size !== entry.size) throw new Error(`blob of ${entry.key} has the wrong size`);
	if (entry.size <= SINGLE_PUT_MAX_BYTES) {
		const body = await readFile(path);
		if (createHash("sha256").update(body).digest("hex") !== entry.sha256)
			throw new Error(`blob of ${entry.key} is corrupt`);
		const res = await admin.fetch(`/files/${encodeKey(entry.key)}`, {
			method: "PUT",
			headers: { "content-length": String(body.length), [META_HEADER]: meta },
			body,
		});
		if (res.status !== 201) throw new Error(`PUT object ${entry.key}: ${res.status} ${await res.text()}`);
		await res.body?.cancel();
		return;
	}
	const key = encodeURIComponent(entry.key);
	const { uploadId } = await admin.json<{ uploadId: string }>(`/uploads?key=${key}`, {
		method: "POST",
		headers: { [META_HEADER]: meta },
	});
	const file = await open(path, "r");
	try {
		const parts: Array<{ partNumber: number; etag: string }> = [];
		for (let offset = 0, n = 1; offset < entry.size; offset += PART_BYTES, n++) {
			const length = Math.min(PART_BYTES, entry.size - offset);
			const buffer = Buffer.alloc(length);
			await file.read(buffer, 0, length, offset);
			parts.push(
				await admin.json(`/uploads/${encodeURIComponent(uploadId)}/parts/${n}?key=${key}`, {
					method: "PUT",
					headers: { "content-length": String(length) },
					body: buffer,
				}),
			);
		}
		await admin.json(`/uploads/${encodeURIComponent(uploadId)}/complete?key=${key}`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ parts }),
		});
	} finally {
		await file.close();
	}
}

async function restoreDurableObject(admin: AdminClient, kind: ObjectKind, name: string, path: string): Promise<number> {
	const base = `/objects/${kind}/${encodeURIComponent(name)}`;
	const started = new Set<string>();
	let rows = 0;
	for await (const line of readLines(path)) {
		const page = JSON.parse(line) as TablePage;
		const first = !started.has(page.table);
		started.add(page.table);
		await admin.json(`${base}/tables/${page.table}${first ? "?first=1" : ""}`, {
			method: "PUT",
			headers: { "content-type": "application/json" },
			body: line,
		});
		rows += page.rows.length;
	}
	const res = await admin.fetch(`${base}/restored`, { method: "POST", timeoutMs: JSON_TIMEOUT_MS });
	if (res.status !== 204) throw new Error(`POST ${base}/restored: ${res.status} ${await res.text()}`);
	return rows;
}

export interface RestoreOptions {
	/** Empty the target's tables first (otherwise they must be empty). */
	replace?: boolean;
}

/** Restores a backup into the target: Postgres, then R2 objects, then Durable Objects. */
export async function restore(target: Target, dir: string, options: RestoreOptions = {}, log: Log = () => {}) {
	const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
	if (manifest.format !== FORMAT) throw new Error(`${dir} is not a ${FORMAT} backup`);
	const runId = newRunId("restore");
	const admin = new AdminClient(target, runId);
	await admin.json("/files?limit=1");
	log(`restore ${runId} ← ${dir} (backup ${manifest.runId} of ${manifest.createdAt})`);

	for (const [table, summary] of Object.entries(manifest.postgres.tables)) {
		const hash = createHash("sha256");
		for await (const chunk of createReadStream(join(dir, "postgres", `${table}.ndjson`))) hash.update(chunk as Buffer);
		if (hash.digest("hex") !== summary.sha256) throw new Error(`postgres/${table}.ndjson does not match the manifest`);
	}
	const db = openPool(target);
	try {
		const counts = await restorePostgres(db, join(dir, "postgres"), manifest.postgres, options);
		log(`  postgres: ${Object.values(counts).reduce((a, b) => a + b, 0)} rows in ${Object.keys(counts).length} tables`);
	} finally {
		await db.end();
	}

	const entries: IndexEntry[] = [];
	for await (const line of readLines(join(dir, "r2/index.ndjson"))) entries.push(JSON.parse(line) as IndexEntry);
	await pool(entries, (entry) => restoreObject(admin, dir, entry));
	log(`  r2: ${entries.length} objects`);

	for (const kind of OBJECT_KINDS) {
		const folder = join(dir, "durable-objects", kind);
		const files = existsSync(folder) ? (await readdir(folder)).filter((f) => f.endsWith(".ndjson")) : [];
		let rows = 0;
		await pool(files, async (file) => {
			const restored = await restoreDurableObject(admin, kind, file.slice(0, -".ndjson".length), join(folder, file));
			rows += restored;
		});
		log(`  durable objects ${kind}: ${files.length} objects, ${rows} rows`);
	}
	return manifest;
}

// ----------------------------------------------------------------- comparison (the restore drill)

async function fileHash(path: string): Promise<string> {
	if (!existsSync(path)) return "(missing)";
	const hash = createHash("sha256");
	for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
	return hash.digest("hex");
}

async function listFiles(dir: string): Promise<string[]> {
	if (!existsSync(dir)) return [];
	return (await readdir(dir, { recursive: true, withFileTypes: true }))
		.filter((e) => e.isFile())
		.map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
		.sort();
}

/** Differences between two backups' contents (not their ids or times); empty when equal. */
export async function compareBackups(a: string, b: string): Promise<string[]> {
	const differences: string[] = [];
	const [ma, mb] = await Promise.all(
		[a, b].map(async (d) => JSON.parse(await readFile(join(d, "manifest.json"), "utf8")) as Manifest),
	);
	if (!ma || !mb) throw new Error("missing manifest");
	for (const field of ["postgres", "r2", "durableObjects"] as const) {
		if (JSON.stringify(ma[field]) !== JSON.stringify(mb[field])) differences.push(`manifest ${field} differs`);
	}
	const [fa, fb] = await Promise.all([listFiles(a), listFiles(b)]);
	for (const file of new Set([...fa, ...fb])) {
		if (file === "manifest.json") continue;
		const [ha, hb] = await Promise.all([fileHash(join(a, file)), fileHash(join(b, file))]);
		if (ha !== hb) differences.push(`${file} differs`);
	}
	return differences;
}
