// Logical backup of Postgres through the same driver the Worker and the
// migrations use (Neon serverless over WebSocket): straight to Neon in
// production, through scripts/local/ws-proxy.ts locally.
//
// Dump: one REPEATABLE READ, READ ONLY transaction (a consistent snapshot of
// every table), each table read through a cursor in primary-key order and
// written as NDJSON, one `row_to_json` object per line: Postgres renders every
// value (timestamps in UTC, bytea as \x hex, bigint exactly) and parses it back
// on restore, so nothing passes through JavaScript numbers or dates.
// Restore: one transaction; tables in foreign-key order, rows through
// json_populate_recordset in batches, sequences moved past the restored ids.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { neonConfig, Pool, type PoolClient } from "@neondatabase/serverless";

export interface PostgresTarget {
	databaseUrl: string;
	/** host:port of a local Neon-protocol proxy; unset against Neon. */
	wsProxy?: string | undefined;
}

export interface TableSummary {
	rows: number;
	sha256: string;
}

export interface PostgresSummary {
	/** drizzle's applied migrations (hashes, in order): a restore target must have these first. */
	migrations: string[];
	tables: Record<string, TableSummary>;
}

const FETCH_ROWS = 1000;
const INSERT_MAX_ROWS = 500;
const INSERT_MAX_BYTES = 4 * 1024 * 1024;

export function openPool(target: PostgresTarget): Pool {
	neonConfig.webSocketConstructor = createRequire(import.meta.url)("ws");
	if (target.wsProxy) {
		const proxy = target.wsProxy;
		neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
		neonConfig.useSecureWebSocket = false;
		neonConfig.pipelineConnect = false;
		neonConfig.pipelineTLS = false;
	}
	const pool = new Pool({ connectionString: target.databaseUrl, max: 1 });
	pool.on("error", () => {});
	return pool;
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Tables of the public schema (drizzle's own bookkeeping lives in schema "drizzle"). */
async function publicTables(client: PoolClient): Promise<string[]> {
	const { rows } = await client.query<{ name: string }>(
		`SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
	);
	return rows.map((r) => r.name);
}

async function primaryKey(client: PoolClient, table: string): Promise<string[]> {
	const { rows } = await client.query<{ name: string }>(
		`SELECT a.attname AS name FROM pg_index i
		 JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
		 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		 WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord`,
		[`public.${ident(table)}`],
	);
	return rows.map((r) => r.name);
}

async function appliedMigrations(client: PoolClient): Promise<string[]> {
	const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('drizzle.__drizzle_migrations') AS t`);
	if (!exists.rows[0]?.t) return [];
	const { rows } = await client.query<{ hash: string }>(
		"SELECT hash FROM drizzle.__drizzle_migrations ORDER BY created_at, id",
	);
	return rows.map((r) => r.hash);
}

async function hashFile(path: string): Promise<string> {
	const hash = createHash("sha256");
	for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
	return hash.digest("hex");
}

/** Writes `<dir>/<table>.ndjson` for every public table; returns row counts, checksums and migrations. */
export async function dumpPostgres(pool: Pool, dir: string): Promise<PostgresSummary> {
	const client = await pool.connect();
	try {
		await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
		await client.query("SET LOCAL TIME ZONE 'UTC'");
		const migrations = await appliedMigrations(client);
		const tables: Record<string, TableSummary> = {};
		for (const table of await publicTables(client)) {
			const key = await primaryKey(client, table);
			const order = key.length > 0 ? key.map((k) => `t.${ident(k)}`).join(", ") : "1";
			await client.query(
				`DECLARE dump_cursor NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS j FROM public.${ident(table)} t ORDER BY ${order}`,
			);
			const path = join(dir, `${table}.ndjson`);
			const out = createWriteStream(path);
			let count = 0;
			for (;;) {
				const { rows } = await client.query<{ j: string }>(`FETCH ${FETCH_ROWS} FROM dump_cursor`);
				if (rows.length === 0) break;
				for (const row of rows) {
					if (!out.write(`${row.j}\n`)) await new Promise<void>((r) => out.once("drain", () => r()));
				}
				count += rows.length;
			}
			await client.query("CLOSE dump_cursor");
			await new Promise<void>((resolve, reject) =>
				out.end((error?: Error | null) => (error ? reject(error) : resolve())),
			);
			tables[table] = { rows: count, sha256: await hashFile(path) };
		}
		await client.query("COMMIT");
		return { migrations, tables };
	} catch (error) {
		await client.query("ROLLBACK").catch(() => {});
		throw error;
	} finally {
		client.release();
	}
}

/** Parents before children, from the foreign keys between public tables. */
async function insertOrder(client: PoolClient, tables: string[]): Promise<string[]> {
	const { rows } = await client.query<{ child: string; parent: string }>(
		`SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
		 JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
		 JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
		 WHERE k.contype = 'f' AND cn.nspname = 'public' AND pn.nspname = 'public' AND c.oid <> p.oid`,
	);
	const parents = new Map(tables.map((t) => [t, new Set<string>()]));
	for (const { child, parent } of rows) parents.get(child)?.add(parent);
	const ordered: string[] = [];
	const state = new Map<string, "visiting" | "done">();
	const visit = (table: string, path: string[]) => {
		if (state.get(table) === "done") return;
		if (state.get(table) === "visiting") throw new Error(`foreign keys form a cycle: ${[...path, table].join(" → ")}`);
		state.set(table, "visiting");
		for (const parent of parents.get(table) ?? []) if (parents.has(parent)) visit(parent, [...path, table]);
		state.set(table, "done");
		ordered.push(table);
	};
	for (const table of [...tables].sort()) visit(table, []);
	return ordered;
}

interface ColumnInfo {
	name: string;
	generated: boolean;
	identityAlways: boolean;
}

async function columnsOf(client: PoolClient, table: string): Promise<ColumnInfo[]> {
	const { rows } = await client.query<{ name: string; is_generated: string; identity_generation: string | null }>(
		`SELECT column_name AS name, is_generated, identity_generation FROM information_schema.columns
		 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
		[table],
	);
	return rows.map((r) => ({
		name: r.name,
		generated: r.is_generated === "ALWAYS",
		identityAlways: r.identity_generation === "ALWAYS",
	}));
}

async function* readLines(path: string): AsyncGenerator<string> {
	const lines = createInterface({ input: createReadStream(path, "utf8"), crlfDelay: Number.POSITIVE_INFINITY });
	for await (const line of lines) if (line.trim()) yield line;
}

export interface RestoreOptions {
	/** Empty every public table first; otherwise the target must be empty. */
	replace?: boolean;
}

/**
 * Loads `<dir>/<table>.ndjson` into an already-migrated database whose applied
 * migrations start with the backup's. All or nothing: one transaction.
 */
export async function restorePostgres(
	pool: Pool,
	dir: string,
	backup: PostgresSummary,
	options: RestoreOptions = {},
): Promise<Record<string, number>> {
	const client = await pool.connect();
	try {
		const applied = await appliedMigrations(client);
		const prefix = applied.slice(0, backup.migrations.length);
		if (prefix.length !== backup.migrations.length || prefix.some((h, i) => h !== backup.migrations[i])) {
			throw new Error(
				`the target database's migrations (${applied.length}) do not start with the backup's (${backup.migrations.length}); run npm run db:migrate with the code that made the backup`,
			);
		}
		await client.query("BEGIN");
		await client.query("SET LOCAL TIME ZONE 'UTC'");
		const present = await publicTables(client);
		const missing = Object.keys(backup.tables).filter((t) => !present.includes(t));
		if (missing.length > 0) throw new Error(`the target database has no table(s) ${missing.join(", ")}`);
		if (options.replace) {
			if (present.length > 0)
				await client.query(`TRUNCATE ${present.map((t) => `public.${ident(t)}`).join(", ")} CASCADE`);
		} else {
			for (const table of present) {
				const { rows } = await client.query(`SELECT 1 FROM public.${ident(table)} LIMIT 1`);
				if (rows.length > 0)
					throw new Error(`table ${table} is not empty (restore into an empty database, or pass --replace)`);
			}
		}
		const counts: Record<string, number> = {};
		for (const table of await insertOrder(client, Object.keys(backup.tables))) {
			const columns = await columnsOf(client, table);
			let names: string[] | undefined;
			let batch: string[] = [];
			let bytes = 0;
			let count = 0;
			const flush = async () => {
				if (batch.length === 0 || !names) return;
				const list = names.map(ident).join(", ");
				const overriding = columns.some((c) => c.identityAlways && names?.includes(c.name))
					? " OVERRIDING SYSTEM VALUE"
					: "";
				await client.query(
					`INSERT INTO public.${ident(table)} (${list})${overriding} SELECT ${list} FROM json_populate_recordset(NULL::public.${ident(table)}, $1::json)`,
					[`[${batch.join(",")}]`],
				);
				count += batch.length;
				batch = [];
				bytes = 0;
			};
			for await (const line of readLines(join(dir, `${table}.ndjson`))) {
				if (!names) {
					// Only the columns the backup has: columns added by later migrations keep their defaults.
					const keys = new Set(Object.keys(JSON.parse(line) as Record<string, unknown>));
					const unknown = [...keys].filter((k) => !columns.some((c) => c.name === k));
					if (unknown.length > 0) throw new Error(`table ${table} has no column(s) ${unknown.join(", ")}`);
					names = columns.filter((c) => keys.has(c.name) && !c.generated).map((c) => c.name);
				}
				batch.push(line);
				bytes += line.length;
				if (batch.length >= INSERT_MAX_ROWS || bytes >= INSERT_MAX_BYTES) await flush();
			}
			await flush();
			const expected = backup.tables[table]?.rows ?? 0;
			if (count !== expected) throw new Error(`table ${table}: restored ${count} rows, the backup has ${expected}`);
			counts[table] = count;
			// Sequences (serial and identity columns) continue after the restored ids.
			for (const column of columns) {
				const { rows } = await client.query<{ seq: string | null }>("SELECT pg_get_serial_sequence($1, $2) AS seq", [
					`public.${ident(table)}`,
					column.name,
				]);
				const seq = rows[0]?.seq;
				if (!seq) continue;
				await client.query(
					`SELECT setval($1::regclass, COALESCE((SELECT max(${ident(column.name)}) FROM public.${ident(table)}), 0) + 1, false)`,
					[seq],
				);
			}
		}
		await client.query("COMMIT");
		return counts;
	} catch (error) {
		await client.query("ROLLBACK").catch(() => {});
		throw error;
	} finally {
		client.release();
	}
}
