import type { PublicUser, User, UserId } from "@secureconnect/protocol";
import { and, eq, or, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { blocks, users } from "../db/schema/index.ts";
import { ApiError } from "../lib/api-error.ts";

export type UserRow = typeof users.$inferSelect;

export function toUser(row: UserRow): User {
	return {
		id: row.id as UserId,
		email: row.email,
		handle: row.handle,
		displayName: row.displayName,
		emailVerified: row.emailVerifiedAt !== null,
		createdAt: row.createdAt.toISOString(),
	};
}

export function toPublicUser(row: Pick<UserRow, "id" | "handle" | "displayName">): PublicUser {
	return { id: row.id as UserId, handle: row.handle, displayName: row.displayName };
}

export async function findUserByEmail(db: Database, email: string): Promise<UserRow | undefined> {
	const [row] = await db
		.select()
		.from(users)
		.where(eq(sql`lower(${users.email})`, email.toLowerCase()));
	return row;
}

export async function getUser(db: Database, id: string): Promise<UserRow | undefined> {
	const [row] = await db.select().from(users).where(eq(users.id, id));
	return row;
}

/** True when either user blocks the other. */
export async function isBlockedEitherWay(db: Database, a: string, b: string): Promise<boolean> {
	const [row] = await db
		.select({ one: sql`1` })
		.from(blocks)
		.where(
			or(and(eq(blocks.blockerId, a), eq(blocks.blockedId, b)), and(eq(blocks.blockerId, b), eq(blocks.blockedId, a))),
		)
		.limit(1);
	return row !== undefined;
}

/** A user as another user may see them: absent if either blocks the other (no existence leak). */
export async function visibleUser(db: Database, viewerId: string, id: string): Promise<UserRow> {
	const row = await getUser(db, id);
	if (!row || (row.id !== viewerId && (await isBlockedEitherWay(db, viewerId, row.id)))) {
		throw new ApiError(404, "NOT_FOUND", "No such user.");
	}
	return row;
}

/** Maps the database's unique violations to the contract's 409 codes. */
export function uniqueViolation(error: unknown): ApiError | undefined {
	let e: unknown = error;
	for (let i = 0; e && i < 4; i++) {
		const { code, constraint } = e as { code?: string; constraint?: string };
		if (code === "23505") {
			if (constraint === "users_email_lower_key")
				return new ApiError(409, "EMAIL_TAKEN", "This email is already registered.");
			if (constraint === "users_handle_lower_key") return new ApiError(409, "HANDLE_TAKEN", "This handle is taken.");
			return new ApiError(409, "CONFLICT", "That already exists.");
		}
		e = (e as { cause?: unknown }).cause;
	}
	return undefined;
}
