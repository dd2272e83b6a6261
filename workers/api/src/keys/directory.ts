// The KeyPackage directory (MLS Delivery Service, RFC 9420 §16.4 roles).
import type { DeviceId, UserId } from "@secureconnect/protocol";
import { KEY_PACKAGE_LOW_WATER } from "@secureconnect/protocol";
import { and, count, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { devices, keyPackages } from "../db/schema/index.ts";

export interface Claimed {
	userId: UserId;
	deviceId: DeviceId;
	package: string;
	lastResort: boolean;
}

export async function availableCount(db: Database, deviceId: string): Promise<number> {
	const [row] = await db
		.select({ n: count() })
		.from(keyPackages)
		.where(and(eq(keyPackages.deviceId, deviceId), eq(keyPackages.lastResort, false), isNull(keyPackages.claimedAt)));
	return Number(row?.n ?? 0);
}

/**
 * Hands out one package of the device: a one-time one exactly once (the
 * single UPDATE … FOR UPDATE SKIP LOCKED is atomic under concurrent claims),
 * else its last-resort package.
 */
export async function claimForDevice(db: Database, deviceId: string, claimer: string): Promise<Claimed | undefined> {
	const [oneTime] = await db
		.update(keyPackages)
		.set({ claimedAt: new Date(), claimedBy: claimer })
		.where(
			eq(
				keyPackages.id,
				sql`(SELECT ${keyPackages.id} FROM ${keyPackages} WHERE ${keyPackages.deviceId} = ${deviceId} AND NOT ${keyPackages.lastResort} AND ${keyPackages.claimedAt} IS NULL ORDER BY ${keyPackages.createdAt} LIMIT 1 FOR UPDATE SKIP LOCKED)`,
			),
		)
		.returning();
	const row =
		oneTime ??
		(
			await db
				.select()
				.from(keyPackages)
				.where(and(eq(keyPackages.deviceId, deviceId), eq(keyPackages.lastResort, true)))
		)[0];
	if (!row) return undefined;
	return {
		userId: row.userId as UserId,
		deviceId: row.deviceId as DeviceId,
		package: row.package,
		lastResort: row.lastResort,
	};
}

export async function devicesOf(db: Database, userId: string): Promise<Array<{ id: string }>> {
	return db.select({ id: devices.id }).from(devices).where(eq(devices.userId, userId));
}

export function isLow(remaining: number): boolean {
	return remaining < KEY_PACKAGE_LOW_WATER;
}
