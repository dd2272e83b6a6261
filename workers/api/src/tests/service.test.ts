import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../index.ts";

interface ErrorBody {
	error: { code: string; message: string; requestId: string };
}

describe("service endpoints", () => {
	it("answers /health with ok and a request id", async () => {
		const res = await SELF.fetch("http://api.test/health");
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ status: "ok" });
		expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
	});

	it("keeps a caller's x-request-id, else the traceparent's trace id", async () => {
		const given = await SELF.fetch("http://api.test/health", { headers: { "x-request-id": "client-req-12345" } });
		expect(given.headers.get("x-request-id")).toBe("client-req-12345");
		const traced = await SELF.fetch("http://api.test/v1/nope", {
			headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
		});
		expect(traced.headers.get("x-request-id")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
		expect(((await traced.json()) as ErrorBody).error.requestId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
	});

	it("reports every dependency ready", async () => {
		const res = await SELF.fetch("http://api.test/ready");
		const body = (await res.json()) as { status: string; checks: Record<string, string> };
		expect(res.status).toBe(200);
		expect(body.status).toBe("ready");
		expect(body.checks).toMatchObject({ config: "ok", database: "ok", storage: "ok", realtime: "ok" });
	});

	it("answers /ready 503 naming the database when it cannot be reached", async () => {
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request("http://api.test/ready"), { ...env, DB_WS_PROXY: "127.0.0.1:9" }, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(503);
		expect(res.headers.get("retry-after")).toBe("5");
		const body = (await res.json()) as { status: string; checks: Record<string, string> };
		expect(body).toMatchObject({ status: "not_ready", checks: { database: "failing", storage: "ok" } });
	});

	it("serves a valid OpenAPI 3.1 document and a docs page", async () => {
		const res = await SELF.fetch("http://api.test/openapi.json");
		const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown>; info: { title: string } };
		expect(doc.openapi).toBe("3.1.0");
		expect(doc.info.title).toBe("SecureConnect API");
		expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/health", "/ready", "/.well-known/jwks.json"]));
		const docs = await SELF.fetch("http://api.test/docs");
		expect(docs.headers.get("content-type")).toContain("text/html");
		const html = await docs.text();
		expect(html).toContain("/.well-known/jwks.json");
		expect(docs.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
	});

	it("lists every operation of the public contract (../shared/API.md), the sockets and the reference included", async () => {
		const doc = (await (await SELF.fetch("http://api.test/openapi.json")).json()) as {
			paths: Record<string, Record<string, unknown>>;
		};
		const listed = new Set(
			Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)),
		);
		const contract = [
			"GET /health",
			"GET /ready",
			"GET /openapi.json",
			"GET /docs",
			"GET /.well-known/jwks.json",
			"POST /v1/auth/register",
			"POST /v1/auth/verify-email",
			"POST /v1/auth/login",
			"POST /v1/auth/refresh",
			"POST /v1/auth/logout",
			"POST /v1/auth/logout-all",
			"GET /v1/auth/sessions",
			"DELETE /v1/auth/sessions/{id}",
			"POST /v1/auth/password/forgot",
			"POST /v1/auth/password/reset",
			"POST /v1/auth/password/change",
			"GET /v1/users/me",
			"PATCH /v1/users/me",
			"DELETE /v1/users/me",
			"GET /v1/users/{id}",
			"GET /v1/users",
			"GET /v1/friends",
			"POST /v1/friends/requests",
			"POST /v1/friends/requests/{id}/accept",
			"POST /v1/friends/requests/{id}/decline",
			"DELETE /v1/friends/{userId}",
			"GET /v1/blocks",
			"PUT /v1/blocks/{userId}",
			"DELETE /v1/blocks/{userId}",
			"POST /v1/devices",
			"GET /v1/devices",
			"DELETE /v1/devices/{id}",
			"POST /v1/keys/packages",
			"GET /v1/keys/packages/count",
			"POST /v1/keys/claim",
			"POST /v1/conversations",
			"GET /v1/conversations",
			"GET /v1/conversations/{id}",
			"PATCH /v1/conversations/{id}",
			"POST /v1/conversations/{id}/members",
			"DELETE /v1/conversations/{id}/members/{userId}",
			"GET /v1/conversations/{id}/messages",
			"POST /v1/conversations/{id}/messages",
			"POST /v1/conversations/{id}/read",
			"GET /v1/conversations/{id}/ws",
			"GET /v1/ws",
			"POST /v1/files",
			"PUT /v1/files/{id}/content",
			"POST /v1/files/{id}/complete",
			"GET /v1/files/{id}",
			"GET /v1/files/{id}/content",
			"DELETE /v1/files/{id}",
			"GET /v1/storage/usage",
			"POST /v1/calls",
			"POST /v1/calls/{id}/join",
			"POST /v1/calls/{id}/decline",
			"POST /v1/calls/{id}/leave",
			"POST /v1/calls/{id}/end",
			"GET /v1/calls/{id}",
			"GET /v1/turn/credentials",
			"POST /v1/push/subscriptions",
			"DELETE /v1/push/subscriptions/{id}",
		];
		expect(contract.filter((operation) => !listed.has(operation))).toEqual([]);
	});

	it("publishes the public half of every signing key", async () => {
		const res = await SELF.fetch("http://api.test/.well-known/jwks.json");
		const body = (await res.json()) as { keys: Array<Record<string, string>> };
		expect(res.status).toBe(200);
		expect(body.keys.length).toBeGreaterThan(0);
		for (const key of body.keys) {
			expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
			expect(key.kid).toBeTruthy();
			expect(key).not.toHaveProperty("d");
		}
	});
});

describe("error envelope", () => {
	it("answers an unknown path with 404 NOT_FOUND", async () => {
		const res = await SELF.fetch("http://api.test/v1/does-not-exist");
		expect(res.status).toBe(404);
		const body = (await res.json()) as ErrorBody;
		expect(body.error.code).toBe("NOT_FOUND");
		expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
	});

	it("answers a known path with the wrong method with 405 and Allow", async () => {
		const res = await SELF.fetch("http://api.test/health", { method: "DELETE" });
		expect(res.status).toBe(405);
		expect(res.headers.get("allow")).toContain("GET");
		expect(((await res.json()) as ErrorBody).error.code).toBe("METHOD_NOT_ALLOWED");
	});

	it("names a missing secret without revealing any secret value", async () => {
		const ctx = createExecutionContext();
		const { PASSWORD_PEPPER: _omitted, ...withoutPepper } = env;
		const res = await worker.fetch(new Request("http://api.test/.well-known/jwks.json"), withoutPepper, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(500);
		const body = (await res.json()) as ErrorBody;
		expect(body.error.code).toBe("MISCONFIGURED");
		expect(body.error.message).toContain("PASSWORD_PEPPER is missing");
		const text = JSON.stringify(body);
		for (const secret of [env.MEDIA_NODE_SECRET, env.JWT_SIGNING_KEYS]) expect(text).not.toContain(secret);
	});

	it("refuses a weak secret by name", async () => {
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request("http://api.test/.well-known/jwks.json"),
			{ ...env, MEDIA_NODE_SECRET: "changeme" },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(500);
		expect(((await res.json()) as ErrorBody).error.message).toContain("MEDIA_NODE_SECRET is too weak");
	});
});
