import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { argon2id } from "argon2-wasm-edge";
import { eq } from "drizzle-orm";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
	ARGON2_ITERATIONS,
	ARGON2_MEMORY_KIB,
	ARGON2_PARALLELISM,
	hashPassword,
	MAX_CONCURRENT_HASHES,
	parameters,
} from "../auth/password.ts";
import { commonPasswordCount } from "../auth/password-policy.ts";
import { loadConfig } from "../config/config.ts";
import { openDatabase } from "../db/client.ts";
import { users } from "../db/schema/index.ts";
import worker from "../index.ts";
import { hmacSha256 } from "../lib/crypto.ts";
import { call, register, signUp } from "./helpers.ts";

type ErrorReply = { error: { code: string; message: string } };

async function fetchWith(overrides: Partial<typeof env>, request: Request): Promise<Response> {
	const ctx = createExecutionContext();
	const res = await worker.fetch(request, { ...env, ...overrides }, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

describe("fail closed", () => {
	it("answers 503 with Retry-After, never access, when the revocation store is unreachable", async () => {
		const s = await signUp();
		const res = await fetchWith(
			{ DB_WS_PROXY: "127.0.0.1:9" },
			new Request("http://api.test/v1/users/me", { headers: { authorization: `Bearer ${s.accessToken}` } }),
		);
		expect(res.status).toBe(503);
		expect(res.headers.get("retry-after")).toBeTruthy();
		expect(((await res.json()) as ErrorReply).error.code).toBe("SERVICE_UNAVAILABLE");
	});

	it("answers 503 to a login when the database is unreachable, and nothing is written", async () => {
		const res = await fetchWith(
			{ DB_WS_PROXY: "127.0.0.1:9" },
			new Request("http://api.test/v1/auth/register", {
				method: "POST",
				headers: { "content-type": "application/json", "cf-connecting-ip": "10.9.9.9" },
				body: JSON.stringify({
					email: "dbdown@example.test",
					password: "a long enough passphrase",
					handle: "dbdown_x",
					displayName: "D",
				}),
			}),
		);
		expect(res.status).toBe(503);
		const retry = await call("/v1/auth/register", {
			body: {
				email: "dbdown@example.test",
				password: "a long enough passphrase",
				handle: "dbdown_x",
				displayName: "D",
			},
		});
		expect(retry.status).toBe(201);
	});
});

describe("access tokens", () => {
	async function forge(
		claims: Record<string, unknown>,
		options: { kid?: string; expiresIn?: string; key?: CryptoKey } = {},
	) {
		const config = await loadConfig(env);
		const signing = config.signingKeys.active;
		return new SignJWT(claims)
			.setProtectedHeader({ alg: "EdDSA", kid: options.kid ?? signing.kid, typ: "at+jwt" })
			.setIssuer(config.issuer)
			.setIssuedAt()
			.setExpirationTime(options.expiresIn ?? "5m")
			.sign(options.key ?? signing.privateKey);
	}

	it("refuses a token for another audience, an expired one, an unknown key and a foreign signature", async () => {
		const s = await signUp();
		const base = { sub: s.id, sid: s.sessionId };
		const wrongAudience = await forge({ ...base, aud: "media" });
		const expired = await forge({ ...base, aud: "secureconnect-api" }, { expiresIn: "-5m" });
		const unknownKid = await forge({ ...base, aud: "secureconnect-api" }, { kid: "not-a-key-id" });
		const foreign = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
		const forged = await forge({ ...base, aud: "secureconnect-api" }, { key: foreign.privateKey });
		for (const token of [wrongAudience, expired, unknownKid, forged, "not.a.jwt"]) {
			const res = await call<ErrorReply>("/v1/users/me", { token });
			expect(res.status).toBe(401);
		}
		const control = await forge({ ...base, aud: "secureconnect-api" });
		expect((await call("/v1/users/me", { token: control })).status).toBe(200);
	});

	it("verifies tokens signed by a second live key during rotation", async () => {
		const s = await signUp();
		const config = await loadConfig(env);
		const { privateKey } = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
			"sign",
			"verify",
		])) as CryptoKeyPair;
		const newJwk = { ...(await crypto.subtle.exportKey("jwk", privateKey)), kid: "rotated-key-2" };
		const current = JSON.parse(env.JWT_SIGNING_KEYS ?? "[]");
		const rotatedEnv = { JWT_SIGNING_KEYS: JSON.stringify([newJwk, ...current]) };
		const jwks = await fetchWith(rotatedEnv, new Request("http://api.test/.well-known/jwks.json"));
		const kids = ((await jwks.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
		expect(kids).toEqual(["rotated-key-2", config.signingKeys.active.kid]);
		// A token from the older key still works while both are live.
		const res = await fetchWith(
			rotatedEnv,
			new Request("http://api.test/v1/users/me", { headers: { authorization: `Bearer ${s.accessToken}` } }),
		);
		expect(res.status).toBe(200);
	});
});

describe("request hygiene", () => {
	it("answers malformed JSON with 400 MALFORMED_JSON", async () => {
		const res = await SELF.fetch("http://api.test/v1/auth/login", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: '{"email": "a@b.c", "password": ',
		});
		expect(res.status).toBe(400);
		expect(((await res.json()) as ErrorReply).error.code).toBe("MALFORMED_JSON");
	});

	it("answers an oversized body with 413 PAYLOAD_TOO_LARGE", async () => {
		const res = await SELF.fetch("http://api.test/v1/auth/login", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ email: "a@b.c", password: "x".repeat(2 * 1024 * 1024) }),
		});
		expect(res.status).toBe(413);
		expect(((await res.json()) as ErrorReply).error.code).toBe("PAYLOAD_TOO_LARGE");
	});

	it("answers a missing body with 400", async () => {
		const res = await SELF.fetch("http://api.test/v1/auth/login", { method: "POST" });
		expect(res.status).toBe(400);
	});
});

describe("password hashing", () => {
	it("uses Argon2id at OWASP strength within what a deployed Worker accepts", async () => {
		// OWASP: m ≥ 19 MiB, t ≥ 2, p = 1. A Worker isolate has 128 MiB; concurrent hashes must fit beside the app.
		expect(ARGON2_MEMORY_KIB).toBeGreaterThanOrEqual(19_456);
		expect(ARGON2_ITERATIONS).toBeGreaterThanOrEqual(2);
		expect(ARGON2_PARALLELISM).toBe(1);
		expect((ARGON2_MEMORY_KIB * 1024 * MAX_CONCURRENT_HASHES) / 2 ** 20).toBeLessThanOrEqual(64);
		const config = await loadConfig(env);
		const stored = await hashPassword("some long passphrase", config.passwordPepper);
		expect(stored.startsWith("$argon2id$v=19$")).toBe(true);
		expect(parameters(stored)).toEqual({ memoryKib: ARGON2_MEMORY_KIB, iterations: ARGON2_ITERATIONS, parallelism: 1 });
	});

	it("ships at least 10,000 common passwords to refuse", () => {
		expect(commonPasswordCount()).toBeGreaterThanOrEqual(10_000);
	});

	it("re-hashes an old, weaker hash at the next login", async () => {
		const user = await register();
		const config = await loadConfig(env);
		const input = await hmacSha256(config.passwordPepper, new TextEncoder().encode(user.password.normalize("NFKC")));
		const weak = await argon2id({
			password: input,
			salt: crypto.getRandomValues(new Uint8Array(16)),
			memorySize: 4096,
			iterations: 1,
			parallelism: 1,
			hashLength: 32,
			outputType: "encoded",
		});
		const handle = openDatabase(config.database);
		try {
			await handle.db.update(users).set({ passwordHash: weak }).where(eq(users.id, user.id));
			const res = await call("/v1/auth/login", { body: { email: user.email, password: user.password }, ip: user.ip });
			expect(res.status).toBe(200);
			const [row] = await handle.db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, user.id));
			expect(parameters(row?.hash ?? "")?.memoryKib).toBe(ARGON2_MEMORY_KIB);
		} finally {
			await handle.close();
		}
	});

	it("never stores or returns the password", async () => {
		const user = await register();
		const config = await loadConfig(env);
		const handle = openDatabase(config.database);
		try {
			const [row] = await handle.db.select().from(users).where(eq(users.id, user.id));
			expect(JSON.stringify(row)).not.toContain(user.password);
		} finally {
			await handle.close();
		}
	});
});
