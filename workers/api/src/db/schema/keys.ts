import { sql } from "drizzle-orm";
import { boolean, index, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { createdAt, devices, users } from "./accounts.ts";

/** MLS KeyPackages per device: one-time ones are claimed once; the last-resort one is reused. */
export const keyPackages = pgTable(
	"key_packages",
	{
		id: text("id").primaryKey(),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		deviceId: text("device_id")
			.notNull()
			.references(() => devices.id, { onDelete: "cascade" }),
		/** base64 of the MLSMessage encoding of the KeyPackage. */
		package: text("package").notNull(),
		/** SHA-256 of the package bytes: the same package is stored once. */
		digest: text("digest").notNull(),
		lastResort: boolean("last_resort").notNull().default(false),
		createdAt: createdAt(),
		claimedAt: timestamp("claimed_at", { withTimezone: true, mode: "date" }),
		claimedBy: text("claimed_by"),
	},
	(t) => [
		uniqueIndex("key_packages_digest_key").on(t.digest),
		index("key_packages_available_idx").on(t.deviceId, t.lastResort, t.claimedAt),
		// At most one last-resort package per device.
		uniqueIndex("key_packages_last_resort_key").on(t.deviceId).where(sql`${t.lastResort}`),
	],
);
