// A fingerprint of everything the api keeps in Postgres: one hash per table over
// all its rows. Equal before and after a refused request means the refusal wrote
// nothing, not even half of something.
import type { Pool } from "@neondatabase/serverless";

export type Fingerprint = Map<string, string>;

/**
 * What changes for reasons other than the request's own effect: the
 * notifications queue consumer writes after answers, while later requests run,
 * and authentication notes when a session was last used whatever the answer.
 * Whole tables ("*") or single columns; each says why.
 */
export const UNCHECKED: Record<string, { columns: "*" | string[]; why: string }> = {
	sessions: {
		columns: ["last_seen_at"],
		why: "authentication notes a session's use (at most once a minute) before any route answers",
	},
	notification_deliveries: { columns: "*", why: "the consumer records each push attempt" },
	notification_dead_letters: { columns: "*", why: "the consumer parks jobs that ran out of retries" },
	outbound_emails: { columns: "*", why: "the consumer records each email's delivery" },
	push_subscriptions: {
		columns: ["last_success_at", "last_failure_at", "failure_count"],
		why: "the consumer counts each subscription's deliveries",
	},
};

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

export class DatabaseFingerprint {
	readonly #pool: Pool;
	readonly #query: string;
	readonly tables: string[];

	private constructor(pool: Pool, query: string, tables: string[]) {
		this.#pool = pool;
		this.#query = query;
		this.tables = tables;
	}

	static async create(pool: Pool): Promise<DatabaseFingerprint> {
		const { rows } = await pool.query<{ name: string }>(
			`SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
		);
		const tables = rows.map((r) => r.name).filter((name) => UNCHECKED[name]?.columns !== "*");
		if (tables.length === 0) throw new Error("the database has no tables: were the migrations applied?");
		const parts = tables.map((t) => {
			const skipped = UNCHECKED[t]?.columns ?? [];
			const row = `(to_jsonb(x) - ARRAY[${(skipped as string[]).map((c) => `'${c}'`).join(", ")}]::text[])::text`;
			return `SELECT '${t}' AS name, md5(coalesce(string_agg(md5(${row}), '' ORDER BY md5(${row})), '')) AS hash FROM ${ident(t)} x`;
		});
		return new DatabaseFingerprint(pool, parts.join(" UNION ALL "), tables);
	}

	async take(): Promise<Fingerprint> {
		const { rows } = await this.#pool.query<{ name: string; hash: string }>(this.#query);
		return new Map(rows.map((r) => [r.name, r.hash]));
	}
}

/** The tables whose content differs. */
export function changedTables(before: Fingerprint, after: Fingerprint): string[] {
	return [...after].filter(([name, hash]) => before.get(name) !== hash).map(([name]) => name);
}
