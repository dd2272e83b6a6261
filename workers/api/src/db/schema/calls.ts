import { index, integer, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { createdAt, users } from "./accounts.ts";
import { conversations } from "./conversations.ts";

/** What a node's TURN probe saw, as carried by its last heartbeat (protocol NodeTurnReport). */
export interface StoredTurnReport {
	servers: Array<{ url: string; up: boolean; reason?: string; checkedAt?: string }>;
}

/** Media nodes known to the api, from their signed heartbeats. */
export const mediaNodes = pgTable("media_nodes", {
	id: text("id").primaryKey(),
	url: text("url").notNull(),
	region: text("region").notNull(),
	capacity: integer("capacity").notNull(),
	calls: integer("calls").notNull().default(0),
	peers: integer("peers").notNull().default(0),
	draining: integer("draining").notNull().default(0),
	/** The node's TURN probe results from its last heartbeat; null when it probes nothing. */
	turn: jsonb("turn").$type<StoredTurnReport>(),
	lastHeartbeatAt: timestamp("last_heartbeat_at", { withTimezone: true, mode: "date" }).notNull(),
	createdAt: createdAt(),
});

export const calls = pgTable(
	"calls",
	{
		id: text("id").primaryKey(),
		conversationId: text("conversation_id")
			.notNull()
			.references(() => conversations.id, { onDelete: "cascade" }),
		initiatorId: text("initiator_id").references(() => users.id, { onDelete: "set null" }),
		media: text("media", { enum: ["audio", "video"] }).notNull(),
		state: text("state", { enum: ["ringing", "active", "ended", "missed", "declined"] }).notNull(),
		/** The media node the call is pinned to. */
		nodeId: text("node_id").notNull(),
		createdAt: createdAt(),
		answeredAt: timestamp("answered_at", { withTimezone: true, mode: "date" }),
		endedAt: timestamp("ended_at", { withTimezone: true, mode: "date" }),
		endedReason: text("ended_reason"),
	},
	(t) => [index("calls_conversation_idx").on(t.conversationId, t.state)],
);

export const callParticipants = pgTable(
	"call_participants",
	{
		callId: text("call_id")
			.notNull()
			.references(() => calls.id, { onDelete: "cascade" }),
		userId: text("user_id")
			.notNull()
			.references(() => users.id, { onDelete: "cascade" }),
		state: text("state", { enum: ["ringing", "joined", "left", "declined", "busy", "missed"] }).notNull(),
		joinedAt: timestamp("joined_at", { withTimezone: true, mode: "date" }),
		leftAt: timestamp("left_at", { withTimezone: true, mode: "date" }),
	},
	(t) => [primaryKey({ columns: [t.callId, t.userId] }), index("call_participants_user_idx").on(t.userId, t.state)],
);
