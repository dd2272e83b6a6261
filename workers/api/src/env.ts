import type { ChatRoom } from "../../chat-room/src/ChatRoom.ts";

/** Bindings and variables as wrangler.toml and secrets provide them. */
export interface Env {
	ENVIRONMENT?: string;
	PUBLIC_URL?: string;
	CORS_ORIGINS?: string;
	LOG_LEVEL?: string;
	MAX_BODY_BYTES?: string;
	DATABASE_URL?: string;
	/** host:port of the local Neon-compatible WebSocket proxy; unset against Neon. */
	DB_WS_PROXY?: string;
	MEDIA_NODE_URL?: string;

	// Secrets (wrangler secret put / .dev.vars)
	JWT_SIGNING_KEYS?: string;
	PASSWORD_PEPPER?: string;
	MEDIA_NODE_SECRET?: string;
	TURN_SECRET?: string;

	CHAT_ROOM: DurableObjectNamespace<ChatRoom>;
	FILES: R2Bucket;
	NOTIFICATIONS: Queue;
}
