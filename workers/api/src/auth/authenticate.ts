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
