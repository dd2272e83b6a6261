// Every documented operation, driven from the OpenAPI document itself: no
// token → 401; junk bodies and odd ids → 4xx, never a 5xx, never a success.
import { SELF } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { signUp } from "./helpers.ts";

interface Operation {
	method: string;
	path: string;
	secured: boolean;
	hasBody: boolean;
}

async function operations(): Promise<Operation[]> {
	const doc = (await (await SELF.fetch("http://api.test/openapi.json")).json()) as {
		paths: Record<string, Record<string, { security?: unknown[]; requestBody?: unknown }>>;
	};
	return Object.entries(doc.paths).flatMap(([path, ops]) =>
		Object.entries(ops).map(([method, op]) => ({
			method: method.toUpperCase(),
			path,
			secured: Array.isArray(op.security) && op.security.length > 0,
			hasBody: op.requestBody !== undefined,
		})),
	);
}

/** Fills path parameters with ids that exist nowhere. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "usr_aaaaaaaaaaaaaaaaaaaa");

describe("authorization matrix", () => {
	it("refuses every secured operation without a token, and with a forged one", async () => {
		const ops = (await operations()).filter((op) => op.secured);
		expect(ops.length).toBeGreaterThan(30);
		for (const op of ops) {
			for (const authorization of [undefined, "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"]) {
				const res = await SELF.fetch(`http://api.test${concrete(op.path)}`, {
					method: op.method,
					headers: {
						"content-type": "application/json",
						...(authorization && { authorization }),
					},
					...(op.hasBody && { body: "{}" }),
				});
				expect(res.status, `${op.method} ${op.path}`).toBe(401);
				const body = (await res.json()) as { error: { code: string; requestId: string } };
				expect(body.error.requestId).toBeTruthy();
			}
		}
	});

	it("answers references to things the caller cannot see with 404 or 4xx, never 2xx or 5xx", async () => {
		const user = await signUp();
		const ops = (await operations()).filter((op) => op.secured && op.path.includes("{"));
		for (const op of ops) {
			const res = await SELF.fetch(`http://api.test${concrete(op.path)}`, {
				method: op.method,
				headers: { "content-type": "application/json", authorization: `Bearer ${user.accessToken}` },
				...(op.hasBody && { body: "{}" }),
			});
			expect(res.status, `${op.method} ${op.path}`).toBeGreaterThanOrEqual(400);
			expect(res.status, `${op.method} ${op.path}`).toBeLessThan(500);
		}
	});
});

describe("body fuzzing", () => {
	it("answers arbitrary JSON bodies with a 4xx envelope, never a 5xx", async () => {
		const user = await signUp();
		const ops = (await operations()).filter((op) => op.hasBody && !op.path.startsWith("/internal"));
		const json = fc.jsonValue({ maxDepth: 3 });
		await fc.assert(
			fc.asyncProperty(fc.constantFrom(...ops), json, async (op, value) => {
				const res = await SELF.fetch(`http://api.test${concrete(op.path)}`, {
					method: op.method,
					headers: {
						"content-type": "application/json",
						"cf-connecting-ip": "10.250.0.1",
						...(op.secured && { authorization: `Bearer ${user.accessToken}` }),
					},
					body: JSON.stringify(value),
				});
				const text = await res.text();
				expect(res.status, `${op.method} ${op.path} ${JSON.stringify(value)} → ${text}`).toBeLessThan(500);
				if (res.status >= 400) expect(JSON.parse(text).error.code).toMatch(/^[A-Z_]+$/);
			}),
			{ numRuns: 150 },
		);
	});
});
