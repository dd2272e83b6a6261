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
	/** Seconds without a heartbeat after which a media node counts as dead (default 30). */
	MEDIA_NODE_STALE_SECONDS?: string;
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
	// Notifications (see workers/api/src/notifications/config.ts; README "Notifications")
	/** resend | smtp | dev (dev: the dev mailbox; dev/test only). */
	EMAIL_PROVIDER?: string;
	EMAIL_FROM?: string;
	/** Resend API base URL (default https://api.resend.com). */
	EMAIL_ENDPOINT?: string;
	SMTP_HOST?: string;
	SMTP_PORT?: string;
	SMTP_USER?: string;
	/** starttls (default) | implicit | off (dev/test only). */
	SMTP_TLS?: string;
	/** FCM HTTP v1 base URL (default https://fcm.googleapis.com). */
	FCM_ENDPOINT?: string;
	APNS_KEY_ID?: string;
	APNS_TEAM_ID?: string;
	/** The app's bundle id; VoIP pushes go to `<topic>.voip`. */
	APNS_TOPIC?: string;
	/** Default https://api.push.apple.com (sandbox: https://api.sandbox.push.apple.com). */
	APNS_ENDPOINT?: string;
	/** relay (default: through the media node, which speaks HTTP/2) | direct. */
	APNS_TRANSPORT?: string;
	/** Base URL of the media node that relays APNs requests (default MEDIA_NODE_URL). */
	APNS_RELAY_URL?: string;
	/** base64url of the uncompressed P-256 public key (65 bytes). */
	VAPID_PUBLIC_KEY?: string;
	/** mailto: or https: contact for push services. */
	VAPID_SUBJECT?: string;
	NOTIFICATION_TIMEOUT_MS?: string;
	// Notification secrets
	EMAIL_API_KEY?: string;
	SMTP_PASSWORD?: string;
	/** The Google service-account JSON (project_id, client_email, private_key, token_uri). */
	FCM_SERVICE_ACCOUNT?: string;
	/** The APNs auth key (.p8, PKCS#8 PEM). */
	APNS_KEY?: string;
	/** base64url of the 32-byte private scalar, or a private JWK. */
	VAPID_PRIVATE_KEY?: string;

	// Secrets (wrangler secret put / .dev.vars)
	JWT_SIGNING_KEYS?: string;
	PASSWORD_PEPPER?: string;
	MEDIA_NODE_SECRET?: string;
	TURN_SECRET?: string;
	/** Enables /admin/v1 (backup and restore) when set; at least 32 random characters. */
	ADMIN_TOKEN?: string;

	CHAT_ROOM: DurableObjectNamespace<ChatRoom>;
	FILES: R2Bucket;
	USER_CHANNEL: DurableObjectNamespace<UserChannel>;
	RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
	NOTIFICATIONS: Queue<NotificationJob>;
	/** The web app (web/dist) as Workers Static Assets; see web/assets.ts. */
	ASSETS?: Fetcher;
	/** Comma-separated media node origins the web app may open sockets to (besides MEDIA_NODE_URL). */
	MEDIA_NODE_ORIGINS?: string;
	/** Workers Analytics Engine dataset secureconnect_metrics (lib/metrics.ts); absent = metrics off. */
	METRICS?: AnalyticsEngineDataset;
}
