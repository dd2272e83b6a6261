// A small JSON Schema → fast-check generator, for the OpenAPI document the api
// publishes (its schemas come from the zod request schemas): valid values, and
// mutations of valid values that a validator must refuse.
import fc from "fast-check";

export interface JsonSchema {
	$ref?: string;
	type?: string | string[];
	properties?: Record<string, JsonSchema>;
	required?: string[];
	items?: JsonSchema;
	minItems?: number;
	maxItems?: number;
	minLength?: number;
	maxLength?: number;
	pattern?: string;
	format?: string;
	enum?: unknown[];
	anyOf?: JsonSchema[];
	oneOf?: JsonSchema[];
	minimum?: number;
	maximum?: number;
	exclusiveMinimum?: number;
	exclusiveMaximum?: number;
	nullable?: boolean;
	default?: unknown;
}

/** Resolves `#/components/schemas/X` references against the document they come from. */
export type Resolve = (ref: string) => JsonSchema;

export function resolverFor(doc: unknown): Resolve {
	return (ref) => {
		let node: unknown = doc;
		for (const part of ref.replace(/^#\//, "").split("/")) node = (node as Record<string, unknown>)?.[part];
		if (!node || typeof node !== "object") throw new Error(`unresolvable $ref ${ref}`);
		return node as JsonSchema;
	};
}

const noRefs: Resolve = (ref) => {
	throw new Error(`no resolver for $ref ${ref}`);
};

/** Generated strings stay short: the limits under test are probed by the mutations, not here. */
const LONGEST = 48;
/** Strings drawn per generated value to find one within the length limits. */
const CANDIDATES = 8;

function deref(schema: JsonSchema, resolve: Resolve): JsonSchema {
	let s = schema;
	for (let i = 0; s.$ref && i < 16; i++) s = resolve(s.$ref);
	return s;
}

function typesOf(schema: JsonSchema): string[] {
	const t = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
	return schema.nullable && !t.includes("null") ? [...t, "null"] : t;
}

function stringArbitrary(schema: JsonSchema): fc.Arbitrary<string> {
	const min = schema.minLength ?? 0;
	const max = schema.maxLength ?? Math.max(min, LONGEST);
	const fits = (s: string) => s.length >= min && s.length <= max;
	const clamp = (s: string) => (s.length > max ? s.slice(0, max) : s.padStart(min, s[0] ?? "a"));
	// Never fc.filter: a filter that seldom passes (a pattern whose matches are
	// mostly too long) makes fast-check retry for ever, the CPU busy. Of a few
	// candidates the first that fits is taken, else one cut or padded to fit.
	const fitting = (candidates: fc.Arbitrary<string>) =>
		fc
			.array(candidates, { minLength: CANDIDATES, maxLength: CANDIDATES })
			.map((all) => all.find(fits) ?? clamp(all[0] ?? ""));
	if (schema.pattern) {
		// Repeats become bounded by the length limits, so a long minimum is reachable.
		const hi = Math.min(max, Math.max(min, 1) + LONGEST);
		const pattern = min > 1 ? schema.pattern.replace(/\](\+|\*)/g, `]{${min},${hi}}`) : schema.pattern;
		return fitting(fc.stringMatching(new RegExp(pattern)));
	}
	if (schema.format === "email") return fitting(fc.emailAddress());
	if (schema.format === "uri") return fitting(fc.webUrl());
	return fc.string({ minLength: min, maxLength: Math.min(max, min + LONGEST), unit: "grapheme" }).map(clamp);
}

function numberArbitrary(schema: JsonSchema, integer: boolean): fc.Arbitrary<number> {
	const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : undefined);
	const max = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : undefined);
	if (integer) {
		return fc.integer({
			min: Math.max(min ?? Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
			max: Math.min(max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
		});
	}
	return fc.double({
		noNaN: true,
		noDefaultInfinity: true,
		...(min !== undefined && { min }),
		...(max !== undefined && { max }),
	});
}

/** Values valid under `schema`. */
export function arbitraryFor(schema: JsonSchema, resolve: Resolve = noRefs): fc.Arbitrary<unknown> {
	const s = deref(schema, resolve);
	const alternatives = s.anyOf ?? s.oneOf;
	if (alternatives) return fc.oneof(...alternatives.map((alt) => arbitraryFor(alt, resolve)));
	if (s.enum) return fc.constantFrom(...s.enum);
	const types = typesOf(s);
	if (types.length > 1) return fc.oneof(...types.map((type) => arbitraryFor({ ...s, type, nullable: false }, resolve)));
	switch (types[0]) {
		case "null":
			return fc.constant(null);
		case "boolean":
			return fc.boolean();
		case "integer":
			return numberArbitrary(s, true);
		case "number":
			return numberArbitrary(s, false);
		case "string":
			return stringArbitrary(s);
		case "array":
			return fc.array(s.items ? arbitraryFor(s.items, resolve) : fc.jsonValue({ maxDepth: 1 }), {
				minLength: s.minItems ?? 0,
				maxLength: Math.min(s.maxItems ?? 5, Math.max(s.minItems ?? 0, 5)),
			});
		case "object":
		case undefined: {
			if (!s.properties)
				return types[0] === "object" ? fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 })) : fc.jsonValue();
			const shape = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, arbitraryFor(v, resolve)]));
			return fc.record(shape, { requiredKeys: (s.required ?? []).filter((k) => k in shape) });
		}
		default:
			throw new Error(`schema-arbitrary: unsupported type ${String(types[0])}`);
	}
}

/** One way to break a valid value, named so a failure says what was sent. */
export interface Mutant {
	kind: string;
	/** The JSON text to send (malformed on purpose for `malformed-json`). */
	text: string;
}

/** A value of a JSON type other than those `schema` allows. */
function wrongType(schema: JsonSchema): fc.Arbitrary<unknown> {
	const allowed = new Set(typesOf(schema));
	if (allowed.has("integer")) allowed.add("number");
	const all: Array<[string, fc.Arbitrary<unknown>]> = [
		["string", fc.string({ maxLength: 8 })],
		["number", fc.double({ noNaN: true, noDefaultInfinity: true })],
		["boolean", fc.boolean()],
		["array", fc.array(fc.integer(), { maxLength: 3 })],
		["object", fc.constant({ unexpected: true })],
		["null", fc.constant(null)],
	];
	const picks = all.filter(([t]) => !allowed.has(t));
	return fc.oneof(...picks.map(([, a]) => a));
}

/** Values that break exactly one rule of `schema` (its own range, length, enum or type). */
function brokenLeaf(schema: JsonSchema, resolve: Resolve): fc.Arbitrary<unknown> | undefined {
	const s = deref(schema, resolve);
	if (s.anyOf || s.oneOf) return fc.constant({ unexpected: [] });
	const options: fc.Arbitrary<unknown>[] = [];
	if (s.type !== undefined) options.push(wrongType(s));
	if (s.enum) options.push(fc.constantFrom("definitely-not-in-the-enum", "", "ADMIN"));
	if (s.maxLength !== undefined) options.push(fc.constant("x".repeat(s.maxLength + 1)));
	if (s.minLength !== undefined && s.minLength > 0) options.push(fc.constant("x".repeat(s.minLength - 1)));
	if (s.pattern) options.push(fc.constantFrom("\u0000", "not valid!", "💥💥💥💥", "../../etc/passwd"));
	if (s.maximum !== undefined) options.push(fc.constantFrom(s.maximum + 1, Number.MAX_SAFE_INTEGER, 1e300));
	if (s.minimum !== undefined) options.push(fc.constantFrom(s.minimum - 1, -1e300));
	if (typesOf(s).includes("integer")) options.push(fc.constant(1.5));
	if (s.maxItems !== undefined) options.push(fc.constant(Array.from({ length: s.maxItems + 1 }, () => "x")));
	if (s.minItems !== undefined && s.minItems > 0) options.push(fc.constant([]));
	return options.length > 0 ? fc.oneof(...options) : undefined;
}

const MALFORMED = [
	'{"unterminated": "str',
	"{,}",
	"[1,2,",
	"{'single': 1}",
	"nul",
	'{"a":1}}',
	"\u0000",
	'{"a": NaN}',
	"",
];

/** Invalid request bodies made from valid ones: the mutation list of the fuzzing brief. */
export function mutantsOf(schema: JsonSchema, resolve: Resolve = noRefs): fc.Arbitrary<Mutant> {
	const s = deref(schema, resolve);
	const valid = arbitraryFor(s, resolve);
	const as = (kind: string) => (value: unknown) => ({ kind, text: JSON.stringify(value) ?? "null" });
	const variants: fc.Arbitrary<Mutant>[] = [
		fc.constant({ kind: "null", text: "null" }),
		fc.constantFrom(...MALFORMED).map((text) => ({ kind: "malformed-json", text })),
		wrongType(s).map(as("wrong-type")),
	];
	const props = Object.keys(s.properties ?? {});
	const required = (s.required ?? []).filter((k) => props.includes(k));
	const record = valid.filter(
		(v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v),
	);
	if (s.properties) {
		variants.push(
			record.map((v) => ({ kind: "extra-field", text: JSON.stringify({ ...v, __proto__x: 1, isAdmin: true }) })),
		);
	}
	if (required.length > 0) {
		variants.push(
			fc.tuple(record, fc.constantFrom(...required)).map(([v, key]) => {
				const { [key]: _dropped, ...rest } = v;
				return { kind: `drop-required:${key}`, text: JSON.stringify(rest) };
			}),
		);
	}
	for (const key of props) {
		const broken = brokenLeaf(s.properties?.[key] as JsonSchema, resolve);
		if (broken) {
			variants.push(
				fc
					.tuple(record, broken)
					.map(([v, bad]) => ({ kind: `broken-field:${key}`, text: JSON.stringify({ ...v, [key]: bad }) })),
			);
		}
		if (!typesOf(deref(s.properties?.[key] as JsonSchema, resolve)).includes("null")) {
			variants.push(record.map((v) => ({ kind: `null-field:${key}`, text: JSON.stringify({ ...v, [key]: null }) })));
		}
	}
	return fc.oneof(...variants);
}

/** A value that breaks one parameter's schema (query/path parameters travel as text). */
export function brokenParameter(schema: JsonSchema, resolve: Resolve = noRefs): fc.Arbitrary<string> {
	const broken = brokenLeaf(schema, resolve) ?? fc.constant("\u0000");
	return fc.oneof(
		broken.map((v) => (typeof v === "string" ? v : (JSON.stringify(v) ?? ""))),
		fc.constantFrom("", "-1", "NaN", "1e999", "%00", "'; drop table users; --"),
	);
}
