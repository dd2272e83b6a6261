// Generated requests for every documented operation: path and query parameters
// and JSON bodies drawn from the operation's own schemas (valid values, with the
// world's real ids planted where a field names one), and mutations of them
// (../../workers/api/src/tests/schema-arbitrary.ts), sent with the owner's
// token, another user's, none or a forged one.
import fc from "fast-check";
import type { Operation, Parameter } from "../../workers/api/src/tests/openapi-operations.ts";
import { fillPath } from "../../workers/api/src/tests/openapi-operations.ts";
import {
	arbitraryFor,
	brokenParameter,
	type JsonSchema,
	mutantsOf,
	type Resolve,
} from "../../workers/api/src/tests/schema-arbitrary.ts";
import type { World } from "./world.ts";

export interface FuzzRequest {
	op: Operation;
	/** What was generated, for the report: "valid body", "mutant:drop-required:email", … */
	kind: string;
	url: string;
	caller: "owner" | "other" | "victim" | "none" | "forged";
	body?: { text: string; contentType: string } | { bytes: Uint8Array; contentType: string };
}

/**
 * Operations that end or remove the caller's session or account: sent as the
 * victim, who signs in again after each success, so the owner keeps working.
 */
export const SESSION_ENDING = new Set([
	"POST /v1/auth/logout",
	"POST /v1/auth/logout-all",
	"POST /v1/auth/password/change",
	"DELETE /v1/auth/sessions/{id}",
	"DELETE /v1/users/me",
]);

/**
 * Real ids travel as placeholders ("@@file@@") filled in when the request is
 * sent (fillWorld): requests are drawn up front, and the world's resources are
 * remade when a request deletes them.
 */
const ref = (name: WorldRef) => `@@${name}@@`;

export type WorldRef =
	| "owner.id"
	| "other.id"
	| "member.id"
	| "other.handle"
	| "victim.email"
	| "victim.password"
	| "victim.sessionId"
	| "group"
	| "direct"
	| "file"
	| "device"
	| "call"
	| "friendRequest"
	| "subscription";

/** Real ids for a path parameter, by the path it appears in. */
function idsFor(op: Operation, name: string): string[] {
	const p = op.path;
	if (name === "userId") return [ref("member.id"), ref("other.id"), ref("owner.id")];
	if (name === "welcomeId") return ["wlc_aaaaaaaaaaaaaaaaaaaa"];
	if (name === "partNumber") return ["1", "2", "10000"];
	if (p.startsWith("/v1/conversations")) return [ref("group"), ref("direct")];
	if (p.startsWith("/v1/files")) return [ref("file")];
	if (p.startsWith("/v1/calls")) return [ref("call")];
	if (p.startsWith("/v1/devices")) return [ref("device")];
	if (p.startsWith("/v1/friends/requests")) return [ref("friendRequest")];
	if (p.startsWith("/v1/push/subscriptions")) return [ref("subscription")];
	if (p.startsWith("/v1/auth/sessions")) return [ref("victim.sessionId")];
	if (p.startsWith("/v1/users")) return [ref("other.id"), ref("member.id")];
	return [];
}

/** Real values for body and query fields that name something. */
function plantedFor(key: string): unknown[] | undefined {
	switch (key) {
		case "conversationId":
			return [ref("group"), ref("direct")];
		case "userId":
			return [ref("member.id"), ref("other.id")];
		case "deviceId":
			return [ref("device")];
		case "memberIds":
		case "userIds":
			return [[ref("member.id")], [ref("member.id"), ref("other.id")]];
		case "handle":
			return [ref("other.handle")];
		case "email":
			return [ref("victim.email")];
		case "password":
		case "currentPassword":
			return [ref("victim.password")];
		default:
			return undefined;
	}
}

/** `text` with each placeholder replaced by the world's current value. */
export function fillWorld(text: string, w: World): string {
	// In a URL the placeholder arrives percent-encoded (%40 is "@").
	return text.replace(/(?:@@|%40%40)([a-zA-Z.]+)(?:@@|%40%40)/g, (_, name: string) => {
		const [head, field] = name.split(".") as [string, string | undefined];
		const value = (w as unknown as Record<string, unknown>)[head];
		const resolved = field ? (value as Record<string, unknown>)?.[field] : value;
		return typeof resolved === "string" ? resolved : `missing-${name}`;
	});
}

/** A valid body with, now and then, real ids in the fields that name something. */
function plant(value: unknown): fc.Arbitrary<unknown> {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return fc.constant(value);
	const entries = Object.entries(value).map(([k, v]) => {
		const real = plantedFor(k);
		return [k, real ? fc.oneof(fc.constant(v), fc.constantFrom(...real)) : fc.constant(v)] as const;
	});
	return fc.record(Object.fromEntries(entries));
}

function parameterValue(op: Operation, p: Parameter, resolve: Resolve): fc.Arbitrary<string | undefined> {
	const real = p.in === "path" ? idsFor(op, p.name) : ((plantedFor(p.name) as string[] | undefined) ?? []);
	const generated = arbitraryFor(p.schema, resolve).map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
	const options: Array<fc.WeightedArbitrary<string | undefined>> = [
		{ arbitrary: generated, weight: 2 },
		{ arbitrary: brokenParameter(p.schema, resolve), weight: 2 },
	];
	if (real.length > 0) options.push({ arbitrary: fc.constantFrom(...real), weight: 4 });
	if (p.in !== "path" && !p.required) options.push({ arbitrary: fc.constant(undefined), weight: 2 });
	return fc.oneof(...options);
}

function bodyFor(op: Operation, resolve: Resolve): fc.Arbitrary<[string, FuzzRequest["body"]]> {
	const { body } = op;
	if (body === undefined && (op.method === "GET" || op.method === "HEAD")) {
		return fc.constant<[string, FuzzRequest["body"]]>(["no body", undefined]);
	}
	if (body === undefined) {
		// Operations without a body still meet one now and then.
		return fc.oneof(
			{ arbitrary: fc.constant<[string, FuzzRequest["body"]]>(["no body", undefined]), weight: 4 },
			{
				arbitrary: fc
					.jsonValue({ maxDepth: 2 })
					.map((v): [string, FuzzRequest["body"]] => [
						"unexpected body",
						{ text: JSON.stringify(v) ?? "null", contentType: "application/json" },
					]),
				weight: 1,
			},
		);
	}
	if (body === "binary") {
		return fc
			.uint8Array({ maxLength: 64 })
			.map((bytes): [string, FuzzRequest["body"]] => ["bytes", { bytes, contentType: "application/octet-stream" }]);
	}
	const valid = arbitraryFor(body as JsonSchema, resolve)
		.chain(plant)
		.map((v): [string, FuzzRequest["body"]] => [
			"valid body",
			{ text: JSON.stringify(v), contentType: "application/json" },
		]);
	const mutant = mutantsOf(body as JsonSchema, resolve).map((m): [string, FuzzRequest["body"]] => [
		`mutant:${m.kind}`,
		{ text: m.text, contentType: "application/json" },
	]);
	const wrongType = arbitraryFor(body as JsonSchema, resolve).map((v): [string, FuzzRequest["body"]] => [
		"valid body as text/plain",
		{ text: JSON.stringify(v), contentType: "text/plain" },
	]);
	return fc.oneof(
		{ arbitrary: valid, weight: 5 },
		{ arbitrary: mutant, weight: 5 },
		{ arbitrary: wrongType, weight: 1 },
		{ arbitrary: fc.constant<[string, FuzzRequest["body"]]>(["missing body", undefined]), weight: 1 },
	);
}

function callerFor(op: Operation): fc.Arbitrary<FuzzRequest["caller"]> {
	if (!op.secured) return fc.constantFrom<FuzzRequest["caller"]>("none", "none", "none", "owner");
	const endsSession = SESSION_ENDING.has(op.key);
	return fc.oneof(
		{ arbitrary: fc.constant<FuzzRequest["caller"]>(endsSession ? "victim" : "owner"), weight: 8 },
		// Only the victim ends its session: the others must stay signed in.
		{ arbitrary: fc.constant<FuzzRequest["caller"]>(endsSession ? "victim" : "other"), weight: 2 },
		{ arbitrary: fc.constantFrom<FuzzRequest["caller"]>("none", "forged"), weight: 1 },
	);
}

/** Requests for one operation. */
export function requestsFor(op: Operation, resolve: Resolve): fc.Arbitrary<FuzzRequest> {
	const params = op.parameters.filter((p) => p.in === "path" || p.in === "query");
	const values = fc.tuple(...params.map((p) => parameterValue(op, p, resolve)));
	return fc.tuple(values, bodyFor(op, resolve), callerFor(op)).map(([vals, [kind, body], caller]) => {
		const path: Record<string, string> = {};
		const query = new URLSearchParams();
		params.forEach((p, i) => {
			const v = vals[i];
			if (v === undefined) return;
			if (p.in === "path") path[p.name] = v;
			else query.set(p.name, v);
		});
		const qs = query.toString();
		return {
			op,
			kind,
			url: fillPath(op.path, path) + (qs ? `?${qs}` : ""),
			caller,
			...(body && { body }),
		};
	});
}
