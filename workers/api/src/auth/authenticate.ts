import type { Config } from "../config/config.ts";
import type { Database } from "../db/client.ts";
import type { Principal } from "../middleware/auth/index.ts";
import { verifyAccessToken } from "./access-token.ts";
import { assertSessionLive } from "./sessions.ts";

/** A valid signature is not enough: the session must still be live in Postgres (fails closed). */
export async function authenticate(config: Config, db: Database, token: string): Promise<Principal> {
	const claims = await verifyAccessToken(config.signingKeys, config.issuer, token);
	await assertSessionLive(db, claims.sessionId, claims.userId);
	return claims;
}

/** For a conversation's socket: the session check and the membership check in one query. */
export async function authenticateMember(
	config: Config,
	db: Database,
	token: string,
	conversationId: string,
): Promise<Principal & { member: boolean }> {
	const claims = await verifyAccessToken(config.signingKeys, config.issuer, token);
	const { member } = await assertSessionLive(db, claims.sessionId, claims.userId, conversationId);
	return { ...claims, member };
}
