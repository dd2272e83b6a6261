// The JSON Schema → fast-check generator used by matrix.test.ts: its valid values
// pass the zod schemas the api's schemas come from; its mutants do not.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { arbitraryFor, brokenParameter, type JsonSchema, mutantsOf, resolverFor } from "./schema-arbitrary.ts";

const Id = z
	.string()
	.min(4)
	.max(64)
	.regex(/^[a-z]{2,5}_[a-z2-7]{10,40}$/);
const Request = z.object({
	kind: z.enum(["direct", "group"]),
	memberIds: z.array(Id).min(1).max(10),
	title: z.string().min(1).max(128).optional(),
	size: z.number().int().min(0).max(1000),
	ratio: z.number().min(-1).max(1).nullable(),
	packages: z
		.array(
			z
				.string()
				.min(16)
				.max(200)
				.regex(/^[A-Za-z0-9+/]+={0,2}$/),
		)
		.max(3),
	lastResort: z.union([z.string().min(1).max(8), z.boolean()]).optional(),
});

const schema: JsonSchema = {
	type: "object",
	properties: {
		kind: { type: "string", enum: ["direct", "group"] },
		memberIds: { type: "array", items: { $ref: "#/components/schemas/Id" }, minItems: 1, maxItems: 10 },
		title: { type: "string", minLength: 1, maxLength: 128 },
		size: { type: "integer", minimum: 0, maximum: 1000 },
		ratio: { type: ["number", "null"], minimum: -1, maximum: 1 },
		packages: {
			type: "array",
			items: { type: "string", minLength: 16, maxLength: 200, pattern: "^[A-Za-z0-9+/]+={0,2}$" },
			maxItems: 3,
		},
		lastResort: { anyOf: [{ type: "string", minLength: 1, maxLength: 8 }, { type: "boolean" }] },
	},
	required: ["kind", "memberIds", "size", "ratio", "packages"],
};
const resolve = resolverFor({
	components: {
		schemas: { Id: { type: "string", minLength: 4, maxLength: 64, pattern: "^[a-z]{2,5}_[a-z2-7]{10,40}$" } },
	},
});

describe("schema-arbitrary", () => {
	it("generates values the schema accepts", () => {
		fc.assert(
			fc.property(arbitraryFor(schema, resolve), (value) => {
				const parsed = Request.safeParse(value);
				expect(parsed.success, `${JSON.stringify(value)} ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
			}),
			{ numRuns: 300 },
		);
	});

	it("generates mutants the schema refuses", () => {
		const kinds = new Set<string>();
		fc.assert(
			fc.property(mutantsOf(schema, resolve), (mutant) => {
				kinds.add(mutant.kind.split(":")[0] as string);
				let value: unknown;
				try {
					value = JSON.parse(mutant.text);
				} catch {
					expect(mutant.kind).toBe("malformed-json");
					return;
				}
				if (mutant.kind === "extra-field") return; // zod strips unknown keys: refusal is the api's choice
				const parsed = Request.safeParse(value);
				expect(parsed.success, `${mutant.kind}: ${mutant.text}`).toBe(false);
			}),
			{ numRuns: 500 },
		);
		for (const kind of ["null", "malformed-json", "wrong-type", "extra-field", "drop-required", "broken-field"]) {
			expect(kinds).toContain(kind);
		}
	});

	it("breaks parameters against their own schema", () => {
		const format = z.enum(["json-format", "html-format"]);
		fc.assert(
			fc.property(brokenParameter({ type: "string", enum: ["json-format", "html-format"] }), (text) => {
				expect(format.safeParse(text).success, text).toBe(false);
			}),
			{ numRuns: 200 },
		);
	});

	it("keeps to the length limits of a pattern whose matches seldom fit them, without hanging", () => {
		// "(ab)+" matches are short; a filter on length would retry for ever (it hung the fuzzer once).
		const values = fc.sample(arbitraryFor({ type: "string", pattern: "^(ab)+$", minLength: 40, maxLength: 44 }), {
			numRuns: 50,
			seed: 7,
		});
		expect(values).toHaveLength(50);
		for (const value of values) expect((value as string).length, String(value)).toBeGreaterThanOrEqual(40);
		for (const value of values) expect((value as string).length, String(value)).toBeLessThanOrEqual(44);
	});

	it("fails loudly on what it does not understand", () => {
		expect(() => arbitraryFor({ type: "tuple" })).toThrow(/unsupported type/);
		expect(() => arbitraryFor({ $ref: "#/components/schemas/Nope" }, resolve)).toThrow(/unresolvable/);
	});
});
