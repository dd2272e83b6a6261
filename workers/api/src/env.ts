import type { ChatRoom } from "../../chat-room/src/ChatRoom.ts";
import type { NotificationJob } from "./notifications/consumer.ts";
import type { RateLimiter } from "./rate-limit/RateLimiter.ts";

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
	/** JSON overrides of named rate policies, e.g. {"login-ip":{"limit":1000}}. */
	RATE_LIMITS?: string;
	SESSION_IDLE_DAYS?: string;
	/** Seconds a just-rotated refresh token may be retried without killing the session; 0 = never. */
	REFRESH_REUSE_GRACE_SECONDS?: string;

	// Secrets (wrangler secret put / .dev.vars)
	JWT_SIGNING_KEYS?: string;
	PASSWORD_PEPPER?: string;
	MEDIA_NODE_SECRET?: string;
	TURN_SECRET?: string;

	CHAT_ROOM: DurableObjectNamespace<ChatRoom>;
	FILES: R2Bucket;
	RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
	NOTIFICATIONS: Queue<NotificationJob>;
}
