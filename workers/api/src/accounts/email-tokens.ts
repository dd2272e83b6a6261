// Single-use, expiring tokens sent by email, stored only as hashes.
import { and, eq, gt, isNull } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { emailTokens } from "../db/schema/index.ts";
import { ApiError } from "../lib/api-error.ts";
import { randomToken, sha256Hex } from "../lib/crypto.ts";

export const VERIFY_EMAIL_TTL_SECONDS = 24 * 3600;
export const PASSWORD_RESET_TTL_SECONDS = 30 * 60;

export type EmailTokenPurpose = "verify_email" | "reset_password";

export async function issueEmailToken(
	db: Database,
	userId: string,
	purpose: EmailTokenPurpose,
	ttlSeconds: number,
): Promise<string> {
	const token = randomToken();
	await db.insert(emailTokens).values({
		tokenHash: await sha256Hex(token),
		userId,
		purpose,
		expiresAt: new Date(Date.now() + ttlSeconds * 1000),
	});
	return token;
}

/**
 * Uses up a token and returns its user. `precheck` runs before the token is
 * spent, so a request refused for another reason (a weak new password) leaves
 * the token usable.
 */
export async function confirmEmailToken(
	db: Database,
	token: string,
	purpose: EmailTokenPurpose,
	precheck?: (userId: string) => Promise<void>,
): Promise<string> {
	const tokenHash = await sha256Hex(token);
	const live = and(
		eq(emailTokens.tokenHash, tokenHash),
		eq(emailTokens.purpose, purpose),
		isNull(emailTokens.usedAt),
		gt(emailTokens.expiresAt, new Date()),
	);
	const [pending] = await db.select({ userId: emailTokens.userId }).from(emailTokens).where(live);
	if (!pending) throw new ApiError(400, "INVALID_TOKEN", "This link or code is invalid, used or expired.");
	await precheck?.(pending.userId);
	const [spent] = await db.update(emailTokens).set({ usedAt: new Date() }).where(live).returning();
	if (!spent) throw new ApiError(400, "INVALID_TOKEN", "This link or code is invalid, used or expired.");
	// Once one is used, the user's other tokens of the same purpose are dead too.
	await db
		.update(emailTokens)
		.set({ usedAt: new Date() })
		.where(and(eq(emailTokens.userId, spent.userId), eq(emailTokens.purpose, purpose), isNull(emailTokens.usedAt)));
	return spent.userId;
}
