// A fingerprint of everything the api keeps in Postgres: per table, its row
// count and a hash over all its rows. Equal before and after a refused request means the refusal wrote
// nothing, not even half of something.
import type { Pool } from "@neondatabase/serverless";

export type Fingerprint = Map<string, string>;

/**
 * What changes for reasons other than the request's own effect: the
 * notifications queue consumer and the rooms' ring-timeout alarms write after
 * answers, while later requests run, and authentication notes when a session
 * was last used whatever the answer.
 * Whole tables ("*") or single columns; each says why.
 */
export const UNCHECKED: Record<string, { columns: "*" | string[]; why: string }> = {
	calls: {
		columns: ["state", "ended_at", "ended_reason"],
		why: "the conversation's Durable Object alarm ends a call nobody answered (ring timeout)",
	},
	call_participants: {
		columns: ["state", "left_at"],
		why: "the same alarm marks whoever was still rung as missed",
	},
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

/** The next transaction id Postgres will hand out: it moves on with every transaction that writes anything. */
const NEXT_XID = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid";

export class DatabaseFingerprint {
	readonly #pool: Pool;
	readonly #query: string;
	readonly tables: string[];
	#last: { xid: string; fingerprint: Fingerprint } | undefined;

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
		// Per table: the row count and a sum of 60-bit row hashes (order-free, so no sort per request).
		const parts = tables.map((t) => {
			const skipped = (UNCHECKED[t]?.columns ?? []) as string[];
			const row =
				skipped.length === 0
					? "x::text"
					: `(to_jsonb(x) - ARRAY[${skipped.map((c) => `'${c}'`).join(", ")}]::text[])::text`;
			return `SELECT '${t}' AS name, count(*) || ':' || coalesce(sum(('x' || substr(md5(r), 1, 15))::bit(60)::bigint), 0) AS hash
				FROM (SELECT ${row} AS r FROM ${ident(t)} x) rows`;
		});
		const query = `SELECT '' AS name, (${NEXT_XID}) AS hash UNION ALL ${parts.join(" UNION ALL ")}`;
		return new DatabaseFingerprint(pool, query, tables);
	}

	/**
	 * Hashes every table, unless no transaction has written since the last
	 * time: then nothing can differ (most refusals cost one cheap query).
	 */
	async take(): Promise<Fingerprint> {
		if (this.#last) {
			const { rows } = await this.#pool.query<{ xid: string }>(NEXT_XID);
			if (rows[0]?.xid === this.#last.xid) return this.#last.fingerprint;
		}
		// One statement, one snapshot: the xid and the hashes agree.
		const { rows } = await this.#pool.query<{ name: string; hash: string }>(this.#query);
		const xid = rows.find((r) => r.name === "")?.hash ?? "";
		const fingerprint: Fingerprint = new Map(rows.filter((r) => r.name !== "").map((r) => [r.name, r.hash]));
		this.#last = { xid, fingerprint };
		return fingerprint;
	}
}

/** The tables whose content differs. */
export function changedTables(before: Fingerprint, after: Fingerprint): string[] {
	return [...after].filter(([name, hash]) => before.get(name) !== hash).map(([name]) => name);
}
