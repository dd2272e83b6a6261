// Backup and restore of a Durable Object's own SQLite: every table the object
// created (the runtime's `_cf_*` and SQLite's `sqlite_*` tables excluded), read
// page by page in rowid order and written back page by page. Pages are bounded
// by rows and by bytes so a long conversation log never exceeds the RPC and
// response size limits. Only the admin api (routes/admin) calls these.

/** A SQLite value as JSON can carry it: blobs travel as base64. */
export type SnapshotValue = string | number | null | { b64: string };

export interface TablePage {
	table: string;
	columns: string[];
	rows: SnapshotValue[][];
	/** The rowid to continue after, or null when the table is done. */
	next: number | null;
}

export const PAGE_MAX_ROWS = 500;
export const PAGE_MAX_BYTES = 2 * 1024 * 1024;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function checkIdentifier(name: string): string {
	if (!IDENTIFIER.test(name)) throw new Error(`not a plain SQL identifier: ${JSON.stringify(name)}`);
	return `"${name}"`;
}

/** The object's own tables, by name. */
export function snapshotTables(sql: SqlStorage): string[] {
	return sql
		.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
		.toArray()
		.map((r) => r.name)
		.filter((name) => !name.startsWith("_cf_") && !name.startsWith("sqlite_") && IDENTIFIER.test(name));
}

function columnsOf(sql: SqlStorage, table: string): string[] {
	return sql
		.exec<{ name: string }>("SELECT name FROM pragma_table_info(?)", table)
		.toArray()
		.map((r) => r.name);
}

function encode(value: SqlStorageValue): SnapshotValue {
	if (value instanceof ArrayBuffer) {
		let binary = "";
		for (const byte of new Uint8Array(value)) binary += String.fromCharCode(byte);
		return { b64: btoa(binary) };
	}
	return value;
}

function decode(value: SnapshotValue): SqlStorageValue {
	if (value !== null && typeof value === "object") {
		const binary = atob(value.b64);
		const bytes = new Uint8Array(binary.length);
		for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
		return bytes.buffer;
	}
	return value;
}

/** Rows of `table` with rowid > `after`, at most PAGE_MAX_ROWS and about PAGE_MAX_BYTES. */
export function readPage(sql: SqlStorage, table: string, after: number): TablePage {
	if (!snapshotTables(sql).includes(table)) throw new Error(`no table ${table}`);
	const quoted = checkIdentifier(table);
	const columns = columnsOf(sql, table);
	const list = columns.map(checkIdentifier).join(", ");
	const cursor = sql.exec(
		`SELECT rowid AS _rowid_, ${list} FROM ${quoted} WHERE rowid > ? ORDER BY rowid LIMIT ?`,
		after,
		PAGE_MAX_ROWS,
	);
	const rows: SnapshotValue[][] = [];
	let bytes = 0;
	let last = after;
	let more = false;
	for (const raw of cursor.raw()) {
		if (bytes >= PAGE_MAX_BYTES) {
			more = true;
			break;
		}
		const [rowid, ...values] = raw;
		const row = values.map(encode);
		bytes += JSON.stringify(row).length;
		rows.push(row);
		last = Number(rowid);
	}
	if (!more && rows.length === PAGE_MAX_ROWS) more = true;
	return { table, columns, rows, next: more ? last : null };
}

/**
 * Writes one page. The first page of a table empties it first, so a restore
 * replaces what the object held. Columns must exist in the current schema.
 */
export function writePage(sql: SqlStorage, page: TablePage, first: boolean): number {
	if (!snapshotTables(sql).includes(page.table)) throw new Error(`no table ${page.table}`);
	const quoted = checkIdentifier(page.table);
	const known = new Set(columnsOf(sql, page.table));
	const unknown = page.columns.filter((c) => !known.has(c));
	if (unknown.length > 0) throw new Error(`table ${page.table} has no column(s) ${unknown.join(", ")}`);
	if (first) sql.exec(`DELETE FROM ${quoted}`);
	if (page.rows.length === 0) return 0;
	const statement = `INSERT INTO ${quoted} (${page.columns.map(checkIdentifier).join(", ")}) VALUES (${page.columns.map(() => "?").join(", ")})`;
	for (const row of page.rows) {
		if (row.length !== page.columns.length) throw new Error(`a row of ${page.table} has the wrong number of values`);
		sql.exec(statement, ...row.map(decode));
	}
	return page.rows.length;
}
