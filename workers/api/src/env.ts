import type { ChatRoom } from "../../chat-room/src/ChatRoom.ts";
import type { UserChannel } from "../../chat-room/src/UserChannel.ts";
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
	/** Comma-separated stun:/turn: URLs of coturn; TURN needs TURN_SECRET. */
	TURN_URLS?: string;
	TURN_TTL_SECONDS?: string;
	CALL_RING_SECONDS?: string;
	MAX_CALL_PARTICIPANTS?: string;
	/** JSON overrides of named rate policies, e.g. {"login-ip":{"limit":1000}}. */
	RATE_LIMITS?: string;
	SESSION_IDLE_DAYS?: string;
	/** Seconds a just-rotated refresh token may be retried without killing the session; 0 = never. */
	REFRESH_REUSE_GRACE_SECONDS?: string;
	// Realtime limits (see workers/chat-room/src/limits.ts for defaults)
	MAX_CIPHERTEXT_BYTES?: string;
	MAX_FRAME_BYTES?: string;
	SENDS_PER_SECOND?: string;
	SEND_BURST?: string;
	MAX_SOCKETS_PER_USER?: string;
	MAX_MEMBERS?: string;
	IDLE_TIMEOUT_SECONDS?: string;
	AUTH_TIMEOUT_SECONDS?: string;
	TYPING_THROTTLE_MS?: string;
	// File limits (see workers/api/src/files/limits.ts for defaults)
	MAX_FILE_BYTES?: string;
	MULTIPART_THRESHOLD_BYTES?: string;
	PART_SIZE_BYTES?: string;
	/** Comma-separated MIME types, `type/*` allowed; empty = any. */
	ALLOWED_CONTENT_TYPES?: string;
	MAX_PENDING_UPLOADS?: string;
	UPLOAD_TTL_SECONDS?: string;
	STORAGE_QUOTA_BYTES?: string;

	// Secrets (wrangler secret put / .dev.vars)
	JWT_SIGNING_KEYS?: string;
	PASSWORD_PEPPER?: string;
	MEDIA_NODE_SECRET?: string;
	TURN_SECRET?: string;

	CHAT_ROOM: DurableObjectNamespace<ChatRoom>;
	FILES: R2Bucket;
	USER_CHANNEL: DurableObjectNamespace<UserChannel>;
	RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
	NOTIFICATIONS: Queue<NotificationJob>;
}
