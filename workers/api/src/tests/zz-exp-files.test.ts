import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { it } from "vitest";
import { loadConfig } from "../config/config.ts";
import { openDatabase } from "../db/client.ts";

it("parallel transactions vs plain queries", async () => {
	const config = await loadConfig(env);
	const errors: string[] = [];
	await Promise.all(
		Array.from({ length: 20 }, async (_, i) => {
			const h = openDatabase(config.database);
			try {
				if (i % 2 === 0 && process.env.NEVER) {
					await h.db.transaction(async (tx) => {
						await tx.execute(sql`select ${i}::int as a`);
						await tx.execute(sql`select ${i}::int + 1 as b`);
					});
				} else {
					const r = await h.db.execute(sql`select ${String(i)}::text as c, 1 as d`);
					if ((r.rows[0] as { c: string }).c !== String(i)) errors.push(`wrong row ${JSON.stringify(r.rows)}`);
				}
			} catch (e) {
				const err = e as Error & { cause?: Error };
				errors.push(`${i}: ${err.message.slice(0, 80)} | cause: ${err.cause?.message}`);
			} finally {
				await h.close();
			}
		}),
	);
	console.log("ERRORS", JSON.stringify(errors, null, 1));
});
