import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { createdAt, users } from "./accounts.ts";

export const conversations = pgTable(
	"conversations",
	{
		id: text("id").primaryKey(),
		type: text("type", { enum: ["direct", "group"] }).notNull(),
		title: text("title"),
		/** For direct conversations: "<smaller userId>:<larger userId>", unique, so a pair has one. */
		directKey: text("direct_key"),
		createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
		retentionSeconds: integer("retention_seconds"),
		createdAt: createdAt(),
		updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [
		uniqueIndex("conversations_direct_key").on(t.directKey),
		check("conversations_direct_has_key", sql`(${t.type} = 'direct') = (${t.directKey} IS NOT NULL)`),
	],
);

export const conversationMembers = pgTable(
	"conversation_members",
	{
		conversationId: text("conversation_id")
			.notNull()
			.references(() => conversations.id, { onDelete: "cascade" }),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		role: text("role", { enum: ["owner", "admin", "member"] }).notNull(),
		joinedAt: timestamp("joined_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
	},
	(t) => [primaryKey({ columns: [t.conversationId, t.userId] }), index("conversation_members_user_idx").on(t.userId)],
);
