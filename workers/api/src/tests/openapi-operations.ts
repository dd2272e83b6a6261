// The api's operations as its OpenAPI document lists them (the document is made
// from the zod route schemas), for suites that must cover every route: the
// authorization matrix (matrix.test.ts, in workerd) and the fuzzer (tests/fuzz,
// in Node against wrangler dev).
import type { JsonSchema } from "./schema-arbitrary.ts";

export interface Parameter {
	in: "path" | "query" | "header" | "cookie";
	name: string;
	required?: boolean;
	schema: JsonSchema;
}

export interface Operation {
	/** "POST /v1/conversations/{id}/messages" */
	key: string;
	method: string;
	path: string;
	secured: boolean;
	parameters: Parameter[];
	/** The JSON request body schema, or "binary" for a raw byte stream. */
	body: JsonSchema | "binary" | undefined;
}

export interface OpenApiDocument {
	paths: Record<
		string,
		Record<
			string,
			{
				security?: unknown[];
				parameters?: Parameter[];
				requestBody?: { content: Record<string, { schema: JsonSchema }> };
			}
		>
	>;
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
	return Object.entries(doc.paths).flatMap(([path, ops]) =>
		Object.entries(ops).map(([method, op]) => {
			const content = op.requestBody?.content ?? {};
			const json = content["application/json"]?.schema;
			return {
				key: `${method.toUpperCase()} ${path}`,
				method: method.toUpperCase(),
				path,
				secured: Array.isArray(op.security) && op.security.length > 0,
				parameters: op.parameters ?? [],
				body: json ?? (content["application/octet-stream"] ? ("binary" as const) : undefined),
			};
		}),
	);
}

/** The path with each `{name}` replaced by its (URL-encoded) value. */
export const fillPath = (path: string, values: Record<string, string>) =>
	path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? "missing"));

export interface ErrorEnvelope {
	error: { code: string; message: string; requestId: string };
}

/** Why `text` (the body of a 4xx) is not the api's error envelope, or undefined when it is. */
export function envelopeProblem(text: string): string | undefined {
	let parsed: { error?: { code?: unknown; message?: unknown; requestId?: unknown } } | undefined;
	try {
		parsed = JSON.parse(text);
	} catch {
		return "the body is not JSON";
	}
	const error = parsed?.error;
	if (typeof error?.code !== "string" || !/^[A-Z][A-Z0-9_]*$/.test(error.code)) return "no UPPER_CASE error.code";
	if (typeof error.message !== "string") return "no error.message";
	if (typeof error.requestId !== "string" || !error.requestId) return "no error.requestId";
	return undefined;
}
