// Sessions and their refresh tokens. Refresh tokens are opaque, stored only as
// hashes and rotated on every use; presenting a rotated one again means it was
// stolen, so the whole session dies.
import type { SessionId, UserId } from "@secureconnect/protocol";
import { and, eq, isNull, ne, sql } from "drizzle-orm";
import type { Config } from "../config/config.ts";
import type { Database } from "../db/client.ts";
import { conversationMembers, refreshTokens, sessions } from "../db/schema/index.ts";
import { ApiError } from "../lib/api-error.ts";
import { randomToken, sha256Hex } from "../lib/crypto.ts";
import { newId } from "../lib/ids.ts";
import { ACCESS_TOKEN_TTL_SECONDS, issueAccessToken } from "./access-token.ts";

/** last_seen_at is written at most this often per session. */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

export interface IssuedTokens {
	accessToken: string;
	refreshToken: string;
	expiresIn: number;
	sessionId: SessionId;
}

async function newRefreshToken(db: Database, config: Config, sessionId: SessionId): Promise<string> {
	const token = randomToken();
	await db.insert(refreshTokens).values({
		tokenHash: await sha256Hex(token),
		sessionId,
		expiresAt: new Date(Date.now() + config.sessions.refreshIdleSeconds * 1000),
	});
	return token;
}

async function tokensFor(
	config: Config,
	userId: UserId,
	sessionId: SessionId,
	refreshToken: string,
): Promise<IssuedTokens> {
	const accessToken = await issueAccessToken(config.signingKeys, config.issuer, { userId, sessionId });
	return { accessToken, refreshToken, expiresIn: ACCESS_TOKEN_TTL_SECONDS, sessionId };
}

export async function createSession(
	db: Database,
	config: Config,
	userId: UserId,
	deviceName: string,
): Promise<IssuedTokens> {
	const sessionId = newId<SessionId>("session");
	await db.insert(sessions).values({ id: sessionId, userId, deviceName });
	const refreshToken = await newRefreshToken(db, config, sessionId);
	return tokensFor(config, userId, sessionId, refreshToken);
}

export async function revokeSession(db: Database, sessionId: string, reason: string): Promise<void> {
	await db
		.update(sessions)
		.set({ revokedAt: new Date(), revokedReason: reason })
		.where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
}

/** Every live session of the user, optionally sparing one (the caller's own). */
export async function revokeUserSessions(
	db: Database,
	userId: string,
	reason: string,
	except?: string,
): Promise<string[]> {
	const ended = await db
		.update(sessions)
		.set({ revokedAt: new Date(), revokedReason: reason })
		.where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), except ? ne(sessions.id, except) : undefined))
		.returning({ id: sessions.id });
	return ended.map((s) => s.id);
}

export async function refreshSession(
	db: Database,
	config: Config,
	presented: string,
	/** Called when a reused token revokes its session: the session's sockets should end too. */
	revoked: (userId: string, sessionId: string) => Promise<void> = async () => {},
): Promise<IssuedTokens> {
	const tokenHash = await sha256Hex(presented);
	// The conditional update is the race guard: of two concurrent refreshes, one wins.
	const [claimed] = await db
		.update(refreshTokens)
		.set({ rotatedAt: new Date() })
		.where(and(eq(refreshTokens.tokenHash, tokenHash), isNull(refreshTokens.rotatedAt)))
		.returning();
	if (!claimed) {
		const [seen] = await db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash));
		if (!seen) throw new ApiError(401, "INVALID_TOKEN", "The refresh token is not valid.");
		const graceMs = config.sessions.refreshReuseGraceSeconds * 1000;
		if (graceMs > 0 && seen.rotatedAt && Date.now() - seen.rotatedAt.getTime() <= graceMs) {
			throw new ApiError(401, "INVALID_TOKEN", "The refresh token was just rotated; use the newest one.");
		}
		await revokeSession(db, seen.sessionId, "refresh_token_reused");
		const [owner] = await db.select({ userId: sessions.userId }).from(sessions).where(eq(sessions.id, seen.sessionId));
		if (owner) await revoked(owner.userId, seen.sessionId);
		throw new ApiError(401, "TOKEN_REUSED", "This refresh token was already used; the session has been revoked.");
	}
	const [session] = await db.select().from(sessions).where(eq(sessions.id, claimed.sessionId));
	if (!session || session.revokedAt) throw new ApiError(401, "INVALID_TOKEN", "The session has ended.");
	if (claimed.expiresAt.getTime() < Date.now()) {
		await revokeSession(db, session.id, "idle_expired");
		throw new ApiError(401, "TOKEN_EXPIRED", "The session expired after a long time without use; sign in again.");
	}
	await db.update(sessions).set({ lastSeenAt: new Date() }).where(eq(sessions.id, session.id));
	const refreshToken = await newRefreshToken(db, config, session.id as SessionId);
	return tokensFor(config, session.userId as UserId, session.id as SessionId, refreshToken);
}

/**
 * The revocation check behind every authenticated request. It reads the
 * database; if that fails, the caller gets 503, never access. With
 * `memberOf`, the same round trip also answers whether the user is a member
 * of that conversation (a socket upgrade needs both, and each round trip to
 * Postgres from the edge is a wait the user sees).
 */
export async function assertSessionLive(
	db: Database,
	sessionId: string,
	userId: string,
	memberOf?: string,
): Promise<{ member: boolean }> {
	const [session] = await db
		.select({
			revokedAt: sessions.revokedAt,
			userId: sessions.userId,
			lastSeenAt: sessions.lastSeenAt,
			member:
				memberOf === undefined
					? sql<boolean>`false`
					: sql<boolean>`exists (select 1 from ${conversationMembers} where ${conversationMembers.conversationId} = ${memberOf} and ${conversationMembers.userId} = ${userId})`,
		})
		.from(sessions)
		.where(eq(sessions.id, sessionId));
	if (!session || session.revokedAt || session.userId !== userId) {
		throw new ApiError(401, "INVALID_TOKEN", "The session has ended; sign in again.");
	}
	if (Date.now() - session.lastSeenAt.getTime() > LAST_SEEN_RESOLUTION_MS) {
		await db.update(sessions).set({ lastSeenAt: sql`now()` }).where(eq(sessions.id, sessionId));
	}
	return { member: session.member === true };
}
