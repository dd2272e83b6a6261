import { createRoute } from "@hono/zod-openapi";
import {
	ChangePasswordRequest,
	ForgotPasswordRequest,
	LoginRequest,
	LoginResponse,
	RefreshRequest,
	RefreshResponse,
	RegisterRequest,
	RegisterResponse,
	ResetPasswordRequest,
	type SessionId,
	SessionList,
	TokenRequest,
	type UserId,
} from "@secureconnect/protocol";
import { and, desc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import {
	confirmEmailToken,
	issueEmailToken,
	PASSWORD_RESET_TTL_SECONDS,
	VERIFY_EMAIL_TTL_SECONDS,
} from "../../accounts/email-tokens.ts";
import { findUserByEmail, getUser, toUser, uniqueViolation } from "../../accounts/users.ts";
import { dummyPasswordHash, hashPassword, verifyPassword } from "../../auth/password.ts";
import { assertPasswordAcceptable } from "../../auth/password-policy.ts";
import { createSession, refreshSession, revokeSession, revokeUserSessions } from "../../auth/sessions.ts";
import { closeSessionSockets } from "../../conversations/service.ts";
import { sessions, users } from "../../db/schema/index.ts";
import { queueEmail } from "../../email/outbox.ts";
import { ApiError } from "../../lib/api-error.ts";
import { clientIp } from "../../lib/client-ip.ts";
import { newId } from "../../lib/ids.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";
import { Limiter } from "../../rate-limit/limiter.ts";

const DEFAULT_DEVICE_NAME = "Unnamed device";
const tags = ["Accounts and sessions"];

const register = createRoute({
	method: "post",
	path: "/v1/auth/register",
	tags,
	summary: "Create an account; a verification email is queued",
	request: { body: jsonBody(RegisterRequest) },
	responses: { 201: jsonResponse(RegisterResponse, "Created"), ...errorResponses(400, 409, 429) },
});
const verifyEmail = createRoute({
	method: "post",
	path: "/v1/auth/verify-email",
	tags,
	summary: "Confirm the email address with the emailed token (single use, 24 h)",
	request: { body: jsonBody(TokenRequest) },
	responses: { ...NO_CONTENT, ...errorResponses(400, 429) },
});
const resendVerification = createRoute({
	method: "post",
	path: "/v1/auth/verify-email/resend",
	tags,
	summary: "Send the verification email again",
	...authed,
	responses: { 202: { description: "Queued (or already verified)" }, ...errorResponses(401, 429) },
});
const login = createRoute({
	method: "post",
	path: "/v1/auth/login",
	tags,
	summary: "Sign in; opens a session",
	request: { body: jsonBody(LoginRequest) },
	responses: { 200: jsonResponse(LoginResponse, "Signed in"), ...errorResponses(400, 401, 423, 429, 503) },
});
const refresh = createRoute({
	method: "post",
	path: "/v1/auth/refresh",
	tags,
	summary: "Rotate the refresh token; a reused one revokes the session",
	request: { body: jsonBody(RefreshRequest) },
	responses: { 200: jsonResponse(RefreshResponse, "New tokens"), ...errorResponses(400, 401, 429) },
});
const logout = createRoute({
	method: "post",
	path: "/v1/auth/logout",
	tags,
	summary: "End this session at once",
	...authed,
	responses: { ...NO_CONTENT, ...errorResponses(401) },
});
const logoutAll = createRoute({
	method: "post",
	path: "/v1/auth/logout-all",
	tags,
	summary: "End every session of the user at once",
	...authed,
	responses: { ...NO_CONTENT, ...errorResponses(401) },
});
const listSessions = createRoute({
	method: "get",
	path: "/v1/auth/sessions",
	tags,
	summary: "The user's live sessions",
	...authed,
	responses: { 200: jsonResponse(SessionList, "Sessions"), ...errorResponses(401) },
});
const deleteSession = createRoute({
	method: "delete",
	path: "/v1/auth/sessions/{id}",
	tags,
	summary: "End one session",
	...authed,
	request: { params: z.object({ id: z.string().max(64) }) },
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});
const forgot = createRoute({
	method: "post",
	path: "/v1/auth/password/forgot",
	tags,
	summary:
		"Email a reset link; answers 202 whether or not the account exists (at most 3 mails per address an hour; 429 only for an IP over its limit)",
	request: { body: jsonBody(ForgotPasswordRequest) },
	responses: { 202: { description: "Accepted" }, ...errorResponses(400, 429) },
});
const reset = createRoute({
	method: "post",
	path: "/v1/auth/password/reset",
	tags,
	summary: "Set a new password with the emailed token (single use, 30 min); every session ends",
	request: { body: jsonBody(ResetPasswordRequest) },
	responses: { ...NO_CONTENT, ...errorResponses(400, 429) },
});
const change = createRoute({
	method: "post",
	path: "/v1/auth/password/change",
	tags,
	summary: "Change the password; every other session ends",
	...authed,
	request: { body: jsonBody(ChangePasswordRequest) },
	responses: { ...NO_CONTENT, ...errorResponses(400, 401, 423) },
});

function linkTo(publicUrl: string | undefined, path: string, token: string): string {
	return `${publicUrl ?? "http://127.0.0.1:8787"}${path}?token=${encodeURIComponent(token)}`;
}

const publicRoutes = createRouter()
	.openapi(register, async (c) => {
		const body = c.req.valid("json");
		const { db, config } = c.var;
		await new Limiter(c.env, config.rateLimits).attempt("register-ip", clientIp(c));
		assertPasswordAcceptable(body.password, { email: body.email, handle: body.handle });
		const passwordHash = await hashPassword(body.password, config.passwordPepper);
		const id = newId<UserId>("user");
		let row: typeof users.$inferSelect | undefined;
		try {
			[row] = await db
				.insert(users)
				.values({ id, email: body.email, handle: body.handle, displayName: body.displayName, passwordHash })
				.returning();
		} catch (error) {
			throw uniqueViolation(error) ?? error;
		}
		if (!row) throw new Error("insert returned no row");
		const token = await issueEmailToken(db, row.id, "verify_email", VERIFY_EMAIL_TTL_SECONDS);
		await queueEmail(db, c.env, c.var.log, c.var.requestId, row.email, {
			name: "verify_email",
			displayName: row.displayName,
			token,
			link: linkTo(config.publicUrl, "/verify-email", token),
		});
		c.var.log.info("account registered", { userId: row.id });
		return c.json({ user: toUser(row) }, 201);
	})
	.openapi(verifyEmail, async (c) => {
		await new Limiter(c.env, c.var.config.rateLimits).attempt("token-ip", clientIp(c));
		const userId = await confirmEmailToken(c.var.db, c.req.valid("json").token, "verify_email");
		await c.var.db
			.update(users)
			.set({ emailVerifiedAt: new Date(), updatedAt: new Date() })
			.where(eq(users.id, userId));
		return c.body(null, 204);
	})
	.openapi(login, async (c) => {
		const body = c.req.valid("json");
		const { db, config } = c.var;
		const limiter = new Limiter(c.env, config.rateLimits);
		await limiter.attempt("login-ip", clientIp(c));
		await limiter.assertUnlocked("login-account", body.email);
		const user = await findUserByEmail(db, body.email);
		// Unknown email and wrong password take the same path, cost and answer.
		const check = await verifyPassword(
			body.password,
			user?.passwordHash ?? (await dummyPasswordHash(config.passwordPepper)),
			config.passwordPepper,
		);
		if (!user || !check.ok) {
			await limiter.fail("login-account", body.email);
			throw new ApiError(401, "INVALID_CREDENTIALS", "The email or password is wrong.");
		}
		await limiter.succeed("login-account", body.email);
		if (check.needsRehash) {
			const passwordHash = await hashPassword(body.password, config.passwordPepper);
			await db.update(users).set({ passwordHash }).where(eq(users.id, user.id));
		}
		const deviceName = body.deviceName ?? DEFAULT_DEVICE_NAME;
		const prior = await db
			.select({ deviceName: sessions.deviceName })
			.from(sessions)
			.where(eq(sessions.userId, user.id))
			.orderBy(desc(sessions.createdAt))
			.limit(100);
		const issued = await createSession(db, config, user.id as UserId, deviceName);
		if (prior.length > 0 && !prior.some((s) => s.deviceName === deviceName)) {
			await queueEmail(db, c.env, c.var.log, c.var.requestId, user.email, {
				name: "new_sign_in",
				displayName: user.displayName,
				deviceName,
				when: new Date().toUTCString(),
			});
		}
		c.var.log.info("signed in", { userId: user.id, sessionId: issued.sessionId });
		return c.json({ ...issued, user: toUser(user) }, 200);
	})
	.openapi(refresh, async (c) => {
		await new Limiter(c.env, c.var.config.rateLimits).attempt("refresh-ip", clientIp(c));
		const { db } = c.var;
		const issued = await refreshSession(db, c.var.config, c.req.valid("json").refreshToken, (userId, sessionId) =>
			closeSessionSockets(c.env, db, userId, [sessionId]),
		);
		return c.json(issued, 200);
	})
	.openapi(forgot, async (c) => {
		const { email } = c.req.valid("json");
		const limiter = new Limiter(c.env, c.var.config.rateLimits);
		await limiter.attempt("forgot-ip", clientIp(c));
		// Past the per-address limit no more mail goes out, but the answer stays 202: a 429 here
		// would tell a caller that somebody asked for this address (and the contract says 202 always).
		const mailable = await limiter.permits("forgot-account", email);
		const user = mailable ? await findUserByEmail(c.var.db, email) : undefined;
		if (user) {
			const token = await issueEmailToken(c.var.db, user.id, "reset_password", PASSWORD_RESET_TTL_SECONDS);
			await queueEmail(c.var.db, c.env, c.var.log, c.var.requestId, user.email, {
				name: "reset_password",
				displayName: user.displayName,
				token,
				link: linkTo(c.var.config.publicUrl, "/reset-password", token),
			});
		}
		return c.body(null, 202);
	})
	.openapi(reset, async (c) => {
		const body = c.req.valid("json");
		const { db, config } = c.var;
		await new Limiter(c.env, config.rateLimits).attempt("token-ip", clientIp(c));
		const userId = await confirmEmailToken(db, body.token, "reset_password", async (id) => {
			const user = await getUser(db, id);
			assertPasswordAcceptable(body.password, { email: user?.email, handle: user?.handle });
		});
		const passwordHash = await hashPassword(body.password, config.passwordPepper);
		// Receiving the reset email proves the address too.
		await db
			.update(users)
			.set({ passwordHash, updatedAt: new Date(), emailVerifiedAt: new Date() })
			.where(eq(users.id, userId));
		await closeSessionSockets(c.env, db, userId, await revokeUserSessions(db, userId, "password_reset"));
		return c.body(null, 204);
	});

const authedRoutes = createRouter()
	.openapi(resendVerification, async (c) => {
		const { db, config } = c.var;
		await new Limiter(c.env, config.rateLimits).attempt("forgot-account", `verify:${c.var.auth.userId}`);
		const user = await getUser(db, c.var.auth.userId);
		if (user && !user.emailVerifiedAt) {
			const token = await issueEmailToken(db, user.id, "verify_email", VERIFY_EMAIL_TTL_SECONDS);
			await queueEmail(db, c.env, c.var.log, c.var.requestId, user.email, {
				name: "verify_email",
				displayName: user.displayName,
				token,
				link: linkTo(config.publicUrl, "/verify-email", token),
			});
		}
		return c.body(null, 202);
	})
	.openapi(logout, async (c) => {
		await revokeSession(c.var.db, c.var.auth.sessionId, "logout");
		await closeSessionSockets(c.env, c.var.db, c.var.auth.userId, [c.var.auth.sessionId]);
		return c.body(null, 204);
	})
	.openapi(logoutAll, async (c) => {
		await closeSessionSockets(
			c.env,
			c.var.db,
			c.var.auth.userId,
			await revokeUserSessions(c.var.db, c.var.auth.userId, "logout_all"),
		);
		return c.body(null, 204);
	})
	.openapi(listSessions, async (c) => {
		const rows = await c.var.db
			.select()
			.from(sessions)
			.where(and(eq(sessions.userId, c.var.auth.userId), isNull(sessions.revokedAt)))
			.orderBy(desc(sessions.lastSeenAt));
		return c.json(
			{
				sessions: rows.map((s) => ({
					id: s.id as SessionId,
					deviceName: s.deviceName,
					createdAt: s.createdAt.toISOString(),
					lastSeenAt: s.lastSeenAt.toISOString(),
					current: s.id === c.var.auth.sessionId,
				})),
			},
			200,
		);
	})
	.openapi(deleteSession, async (c) => {
		const { id } = c.req.valid("param");
		const [row] = await c.var.db
			.update(sessions)
			.set({ revokedAt: new Date(), revokedReason: "deleted" })
			.where(and(eq(sessions.id, id), eq(sessions.userId, c.var.auth.userId), isNull(sessions.revokedAt)))
			.returning({ id: sessions.id });
		if (!row) throw new ApiError(404, "NOT_FOUND", "No such session.");
		await closeSessionSockets(c.env, c.var.db, c.var.auth.userId, [row.id]);
		return c.body(null, 204);
	})
	.openapi(change, async (c) => {
		const body = c.req.valid("json");
		const { db, config } = c.var;
		const limiter = new Limiter(c.env, config.rateLimits);
		await limiter.assertUnlocked("password-change", c.var.auth.userId);
		const user = await getUser(db, c.var.auth.userId);
		if (!user) throw new ApiError(401, "INVALID_TOKEN", "The session has ended; sign in again.");
		const check = await verifyPassword(body.currentPassword, user.passwordHash, config.passwordPepper);
		if (!check.ok) {
			await limiter.fail("password-change", c.var.auth.userId);
			throw new ApiError(401, "INVALID_CREDENTIALS", "The current password is wrong.");
		}
		await limiter.succeed("password-change", c.var.auth.userId);
		assertPasswordAcceptable(body.password, { email: user.email, handle: user.handle });
		const passwordHash = await hashPassword(body.password, config.passwordPepper);
		await db.update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, user.id));
		await closeSessionSockets(
			c.env,
			db,
			user.id,
			await revokeUserSessions(db, user.id, "password_changed", c.var.auth.sessionId),
		);
		return c.body(null, 204);
	});

export const authRoutes = createRouter().route("/", publicRoutes).route("/", authedRoutes);
