import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import worker from "../index.ts";
import { DEFAULT_RATE_POLICIES } from "../rate-limit/policies.ts";
import {
	call,
	codeIn,
	type Json,
	login,
	mailbox,
	randomIp,
	register,
	STRONG_PASSWORD,
	signUp,
	unique,
} from "./helpers.ts";

type ErrorReply = { error: { code: string; message: string; requestId: string } };

describe("POST /v1/auth/register", () => {
	it("creates an unverified account and queues a verification email", async () => {
		const id = unique();
		const res = await call<{ user: Json }>("/v1/auth/register", {
			body: {
				email: `New-${id}@Example.test`,
				password: STRONG_PASSWORD,
				handle: `h_${id}`,
				displayName: "New Person",
			},
		});
		expect(res.status).toBe(201);
		expect(res.body.user).toMatchObject({
			email: `New-${id}@Example.test`,
			handle: `h_${id}`,
			displayName: "New Person",
			emailVerified: false,
		});
		expect(res.body.user).not.toHaveProperty("passwordHash");
		const mails = await mailbox(`new-${id}@example.test`);
		expect(mails).toHaveLength(1);
		expect(mails[0]?.template).toBe("verify_email");
		expect(mails[0]?.text).toContain("/verify-email?token=");
	});

	it("refuses a taken email or handle, case-insensitively, with 409", async () => {
		const user = await register();
		const emailTaken = await call<ErrorReply>("/v1/auth/register", {
			body: { email: user.email.toUpperCase(), password: STRONG_PASSWORD, handle: `x_${unique()}`, displayName: "X" },
		});
		expect(emailTaken.status).toBe(409);
		expect(emailTaken.body.error.code).toBe("EMAIL_TAKEN");
		const handleTaken = await call<ErrorReply>("/v1/auth/register", {
			body: {
				email: `${unique()}@example.test`,
				password: STRONG_PASSWORD,
				handle: user.handle.toUpperCase(),
				displayName: "X",
			},
		});
		expect(handleTaken.status).toBe(409);
		expect(handleTaken.body.error.code).toBe("HANDLE_TAKEN");
	});

	it.each([
		["too short", "short1!", "VALIDATION_FAILED"],
		["too long", "x".repeat(257), "VALIDATION_FAILED"],
		["too common", "qwertyuiop", "WEAK_PASSWORD"],
		["common in another case", "Password123", "WEAK_PASSWORD"],
	])("refuses a password that is %s", async (_label, password, code) => {
		const id = unique();
		const email = `weak-${id}@example.test`;
		const res = await call<ErrorReply>("/v1/auth/register", {
			body: { email, password, handle: `w_${id}`, displayName: "Weak" },
		});
		expect(res.status).toBe(400);
		expect(res.body.error.code).toBe(code);
		// Nothing was written: the same email registers fine afterwards.
		const retry = await call("/v1/auth/register", {
			body: { email, password: STRONG_PASSWORD, handle: `w_${id}`, displayName: "Weak" },
		});
		expect(retry.status).toBe(201);
	});

	it("refuses malformed input with a 400 naming the field", async () => {
		const res = await call<ErrorReply & { error: { details: { issues: Array<{ path: string }> } } }>(
			"/v1/auth/register",
			{
				body: { email: "not-an-email", password: STRONG_PASSWORD, handle: "ok_handle", displayName: "X" },
			},
		);
		expect(res.status).toBe(400);
		expect(res.body.error.code).toBe("VALIDATION_FAILED");
		expect(res.body.error.message).toContain("email");
	});
});

describe("POST /v1/auth/verify-email", () => {
	it("verifies once; the token is then dead", async () => {
		const user = await register();
		const token = codeIn((await mailbox(user.email))[0]?.text ?? "");
		expect((await call("/v1/auth/verify-email", { body: { token } })).status).toBe(204);
		const again = await call<ErrorReply>("/v1/auth/verify-email", { body: { token } });
		expect(again.status).toBe(400);
		expect(again.body.error.code).toBe("INVALID_TOKEN");
		const signedIn = await login(user);
		const me = await call<{ user: Json }>("/v1/users/me", { token: signedIn.accessToken });
		expect(me.body.user.emailVerified).toBe(true);
	});

	it("refuses an unknown token", async () => {
		const res = await call<ErrorReply>("/v1/auth/verify-email", { body: { token: "A".repeat(43) } });
		expect(res.status).toBe(400);
	});
});

describe("POST /v1/auth/login", () => {
	it("returns tokens, a session and the user; the access token is a short-lived EdDSA JWT", async () => {
		const user = await register();
		const res = await call<Json>("/v1/auth/login", {
			body: { email: user.email, password: user.password, deviceName: "Laptop" },
		});
		expect(res.status).toBe(200);
		expect(res.body).toMatchObject({ expiresIn: 900, user: { id: user.id, email: user.email } });
		const token = res.body.accessToken as string;
		const header = decodeProtectedHeader(token);
		expect(header.alg).toBe("EdDSA");
		expect(header.kid).toBeTruthy();
		const claims = decodeJwt(token);
		expect(claims).toMatchObject({ sub: user.id, sid: res.body.sessionId, aud: "secureconnect-api" });
		expect(claims.iss).toBeTruthy();
		expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeLessThanOrEqual(900);
		expect(typeof res.body.refreshToken).toBe("string");
		const jwks = await call<{ keys: Array<{ kid: string }> }>("/.well-known/jwks.json");
		expect(jwks.body.keys.map((k) => k.kid)).toContain(header.kid);
	});

	it("answers an unknown email exactly like a wrong password", async () => {
		const user = await register();
		const ip = randomIp();
		const wrong = await call<ErrorReply>("/v1/auth/login", {
			body: { email: user.email, password: "wrong password 123" },
			ip,
		});
		const unknown = await call<ErrorReply>("/v1/auth/login", {
			body: { email: `nobody-${unique()}@example.test`, password: "wrong password 123" },
			ip,
		});
		expect(wrong.status).toBe(401);
		expect(unknown.status).toBe(401);
		const strip = (r: ErrorReply) => JSON.stringify({ ...r.error, requestId: undefined });
		expect(strip(unknown.body)).toBe(strip(wrong.body));
		expect(wrong.body.error.code).toBe("INVALID_CREDENTIALS");
	});

	it("locks the account after repeated failures with 423 and Retry-After, even for the right password", async () => {
		const user = await register();
		for (let i = 0; i < 5; i++) {
			const res = await call("/v1/auth/login", {
				body: { email: user.email, password: `wrong password ${i}x` },
				ip: randomIp(),
			});
			expect(res.status).toBe(401);
		}
		const lockedOut = await call<ErrorReply>("/v1/auth/login", {
			body: { email: user.email, password: user.password },
			ip: randomIp(),
		});
		expect(lockedOut.status).toBe(423);
		expect(lockedOut.body.error.code).toBe("ACCOUNT_LOCKED");
		expect(Number(lockedOut.headers.get("retry-after"))).toBeGreaterThan(0);
	});

	it("throttles one address with 429 and Retry-After under the production policy", async () => {
		const ip = randomIp();
		const production = { ...env, RATE_LIMITS: undefined };
		let last: Response | undefined;
		for (let i = 0; i < 21; i++) {
			const ctx = createExecutionContext();
			last = await worker.fetch(
				new Request("http://api.test/v1/auth/login", {
					method: "POST",
					headers: { "content-type": "application/json", "cf-connecting-ip": ip },
					body: JSON.stringify({ email: `nobody-${unique()}@example.test`, password: "whatever password" }),
				}),
				production,
				ctx,
			);
			await waitOnExecutionContext(ctx);
		}
		if (!last) throw new Error("no response");
		expect(last.status).toBe(429);
		expect(((await last.json()) as ErrorReply).error.code).toBe("RATE_LIMITED");
		expect(Number(last.headers.get("retry-after"))).toBeGreaterThan(0);
	});
});

describe("refresh tokens", () => {
	it("rotate on use; replaying a used one answers TOKEN_REUSED and kills the session", async () => {
		const s = await signUp();
		const first = await call<{ accessToken: string; refreshToken: string }>("/v1/auth/refresh", {
			body: { refreshToken: s.refreshToken },
		});
		expect(first.status).toBe(200);
		expect(first.body.refreshToken).not.toBe(s.refreshToken);
		expect((await call("/v1/users/me", { token: first.body.accessToken })).status).toBe(200);

		const replay = await call<ErrorReply>("/v1/auth/refresh", { body: { refreshToken: s.refreshToken } });
		expect(replay.status).toBe(401);
		expect(replay.body.error.code).toBe("TOKEN_REUSED");
		// The thief's and the owner's tokens of that session are all dead now.
		expect((await call("/v1/auth/refresh", { body: { refreshToken: first.body.refreshToken } })).status).toBe(401);
		expect((await call("/v1/users/me", { token: first.body.accessToken })).status).toBe(401);
	});

	it("refuses an unknown refresh token", async () => {
		const res = await call<ErrorReply>("/v1/auth/refresh", { body: { refreshToken: "B".repeat(43) } });
		expect(res.status).toBe(401);
		expect(res.body.error.code).toBe("INVALID_TOKEN");
	});
});

describe("revocation is immediate", () => {
	it("after logout", async () => {
		const s = await signUp();
		expect((await call("/v1/auth/logout", { method: "POST", token: s.accessToken })).status).toBe(204);
		const me = await call<ErrorReply>("/v1/users/me", { token: s.accessToken });
		expect(me.status).toBe(401);
		expect((await call("/v1/auth/refresh", { body: { refreshToken: s.refreshToken } })).status).toBe(401);
	});

	it("after logout-all, for every session", async () => {
		const user = await register();
		const a = await login(user, "phone");
		const b = await login(user, "laptop");
		expect((await call("/v1/auth/logout-all", { method: "POST", token: a.accessToken })).status).toBe(204);
		expect((await call("/v1/users/me", { token: a.accessToken })).status).toBe(401);
		expect((await call("/v1/users/me", { token: b.accessToken })).status).toBe(401);
	});

	it("after deleting a session, which the list then omits", async () => {
		const user = await register();
		const a = await login(user, "phone");
		const b = await login(user, "laptop");
		const list = await call<{ sessions: Array<{ id: string; deviceName: string; current: boolean }> }>(
			"/v1/auth/sessions",
			{
				token: a.accessToken,
			},
		);
		expect(list.status).toBe(200);
		expect(list.body.sessions.map((x) => x.deviceName).sort()).toEqual(["laptop", "phone"]);
		expect(list.body.sessions.find((x) => x.current)?.id).toBe(a.sessionId);
		expect((await call(`/v1/auth/sessions/${b.sessionId}`, { method: "DELETE", token: a.accessToken })).status).toBe(
			204,
		);
		expect((await call("/v1/users/me", { token: b.accessToken })).status).toBe(401);
		expect((await call("/v1/users/me", { token: a.accessToken })).status).toBe(200);
		const after = await call<{ sessions: unknown[] }>("/v1/auth/sessions", { token: a.accessToken });
		expect(after.body.sessions).toHaveLength(1);
	});

	it("refuses to delete another user's session with 404", async () => {
		const a = await signUp();
		const b = await signUp();
		expect((await call(`/v1/auth/sessions/${b.sessionId}`, { method: "DELETE", token: a.accessToken })).status).toBe(
			404,
		);
		expect((await call("/v1/users/me", { token: b.accessToken })).status).toBe(200);
	});

	it("after a password reset, for every session", async () => {
		const user = await register();
		const s = await login(user);
		expect((await call("/v1/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
		const mail = (await mailbox(user.email)).find((m) => m.template === "reset_password");
		const token = codeIn(mail?.text ?? "");
		const weak = await call<ErrorReply>("/v1/auth/password/reset", { body: { token, password: "qwertyuiop" } });
		expect(weak.status).toBe(400);
		const newPassword = "a different long passphrase 7";
		expect((await call("/v1/auth/password/reset", { body: { token, password: newPassword } })).status).toBe(204);
		expect((await call("/v1/users/me", { token: s.accessToken })).status).toBe(401);
		expect(
			(await call("/v1/auth/password/reset", { body: { token, password: "yet another passphrase 8" } })).status,
		).toBe(400);
		const old = await call("/v1/auth/login", { body: { email: user.email, password: user.password } });
		expect(old.status).toBe(401);
		await login({ ...user, password: newPassword });
	});

	it("after a password change, for every other session", async () => {
		const user = await register();
		const a = await login(user, "phone");
		const b = await login(user, "laptop");
		const wrong = await call<ErrorReply>("/v1/auth/password/change", {
			token: a.accessToken,
			body: { currentPassword: "not my password", password: "brand new passphrase 9" },
		});
		expect(wrong.status).toBe(401);
		const ok = await call("/v1/auth/password/change", {
			token: a.accessToken,
			body: { currentPassword: user.password, password: "brand new passphrase 9" },
		});
		expect(ok.status).toBe(204);
		expect((await call("/v1/users/me", { token: a.accessToken })).status).toBe(200);
		expect((await call("/v1/users/me", { token: b.accessToken })).status).toBe(401);
		await login({ ...user, password: "brand new passphrase 9" });
	});
});

describe("POST /v1/auth/password/forgot", () => {
	it("answers 202 whether or not the account exists, and emails only real accounts", async () => {
		const email = `ghost-${unique()}@example.test`;
		expect((await call("/v1/auth/password/forgot", { body: { email } })).status).toBe(202);
		expect(await mailbox(email)).toHaveLength(0);
	});

	it("keeps answering 202 past the per-address limit, mailing no more than the limit", async () => {
		const user = await register();
		const statuses: number[] = [];
		for (let i = 0; i < 5; i++) {
			statuses.push((await call("/v1/auth/password/forgot", { body: { email: user.email } })).status);
		}
		expect(statuses).toEqual([202, 202, 202, 202, 202]);
		const resets = (await mailbox(user.email)).filter((m) => m.template === "reset_password");
		expect(resets).toHaveLength(DEFAULT_RATE_POLICIES["forgot-account"].limit);
	});
});

describe("new sign-in email", () => {
	it("is sent when an account signs in on a device it never used", async () => {
		const user = await register();
		await login(user, "Phone");
		await login(user, "Phone");
		expect((await mailbox(user.email)).filter((m) => m.template === "new_sign_in")).toHaveLength(0);
		await login(user, "Borrowed laptop");
		const mails = (await mailbox(user.email)).filter((m) => m.template === "new_sign_in");
		expect(mails).toHaveLength(1);
		expect(mails[0]?.text).toContain("Borrowed laptop");
	});
});
