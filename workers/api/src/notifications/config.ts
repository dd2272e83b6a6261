// Push and email configuration. Every provider is optional except email
// outside dev/test; a provider that is half configured, or whose key does not
// import, is reported by variable name (never by value).
import { importPKCS8 } from "jose";
import type { Env } from "../env.ts";
import { fromBase64 as fromBase64Url, base64url as toBase64Url } from "../lib/crypto.ts";

export const DEFAULT_NOTIFICATION_TIMEOUT_MS = 10_000;
export const DEFAULT_FCM_ENDPOINT = "https://fcm.googleapis.com";
export const DEFAULT_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";
export const DEFAULT_APNS_ENDPOINT = "https://api.push.apple.com";
export const DEFAULT_RESEND_ENDPOINT = "https://api.resend.com";
export const DEV_EMAIL_FROM = "SecureConnect <no-reply@secureconnect.invalid>";

type Environment = "dev" | "test" | "staging" | "production";

export interface FcmServiceAccount {
	projectId: string;
	clientEmail: string;
	privateKey: string;
	privateKeyId: string | undefined;
	tokenUri: string;
}

export interface FcmConfig {
	serviceAccount: FcmServiceAccount;
	endpoint: string;
}

export interface ApnsConfig {
	/** PKCS#8 PEM of the .p8 auth key. */
	key: string;
	keyId: string;
	teamId: string;
	topic: string;
	endpoint: string;
	transport: "direct" | "relay";
	relayUrl: string | undefined;
	relaySecret: string;
}

export interface WebPushConfig {
	/** base64url of the uncompressed public point; browsers subscribe with it. */
	publicKey: string;
	privateJwk: JsonWebKey;
	subject: string;
	/** dev/test: http:// and local endpoints (fake push services) are allowed. */
	allowInsecureEndpoints: boolean;
}

export interface PushConfig {
	timeoutMs: number;
	fcm: FcmConfig | undefined;
	apns: ApnsConfig | undefined;
	webpush: WebPushConfig | undefined;
}

export interface SmtpConfig {
	host: string;
	port: number;
	user: string | undefined;
	password: string | undefined;
	tls: "starttls" | "implicit" | "off";
	/** Refuse to authenticate or send over a connection that is not encrypted. */
	requireTls: boolean;
}

export interface EmailConfig {
	provider: "dev" | "resend" | "smtp";
	from: string;
	timeoutMs: number;
	/** Staging/production: once sent, the outbox row keeps only metadata (links and codes must not linger). */
	clearBodiesAfterSend: boolean;
	resend: { apiKey: string; endpoint: string } | undefined;
	smtp: SmtpConfig | undefined;
}

export interface NotificationConfig {
	push: PushConfig;
	email: EmailConfig;
}

const KNOWN_WEAK = /^(changeme|change-me|secret|password|default|test|dev|example|supersecret|super-secret)$/i;

function providerSecret(name: string, value: string | undefined, problems: string[], min: number): string {
	if (!value) {
		problems.push(`${name} is missing (set it with \`wrangler secret put ${name}\`, or in .dev.vars locally)`);
		return "";
	}
	if (value.length < min || KNOWN_WEAK.test(value)) problems.push(`${name} is too weak or truncated`);
	return value;
}

function required(name: string, value: string | undefined, problems: string[], why: string): string {
	if (!value) problems.push(`${name} is missing (${why})`);
	return value ?? "";
}

function baseUrl(name: string, value: string, secure: boolean, problems: string[]): string {
	try {
		const url = new URL(value);
		if (secure && url.protocol !== "https:") problems.push(`${name} must be an https:// URL`);
		else if (url.protocol !== "https:" && url.protocol !== "http:") problems.push(`${name} must be an http(s) URL`);
	} catch {
		problems.push(`${name} is not a URL`);
	}
	return value.replace(/\/+$/, "");
}

async function importable(name: string, pem: string, alg: "RS256" | "ES256", problems: string[]): Promise<void> {
	try {
		await importPKCS8(pem, alg);
	} catch (error) {
		problems.push(`${name} does not hold a PKCS#8 ${alg} private key: ${(error as Error).message}`);
	}
}

async function parseFcm(env: Env, secure: boolean, problems: string[]): Promise<FcmConfig | undefined> {
	if (!env.FCM_SERVICE_ACCOUNT) return undefined;
	let raw: Record<string, unknown>;
	try {
		raw = JSON.parse(env.FCM_SERVICE_ACCOUNT) as Record<string, unknown>;
	} catch {
		problems.push("FCM_SERVICE_ACCOUNT is not JSON (use the service account's key file as it is)");
		return undefined;
	}
	const text = (key: string) => (typeof raw[key] === "string" ? (raw[key] as string) : undefined);
	const missing = ["project_id", "client_email", "private_key"].filter((k) => !text(k));
	if (missing.length > 0) {
		problems.push(`FCM_SERVICE_ACCOUNT lacks ${missing.join(", ")}`);
		return undefined;
	}
	const privateKey = text("private_key") as string;
	await importable("FCM_SERVICE_ACCOUNT.private_key", privateKey, "RS256", problems);
	return {
		serviceAccount: {
			projectId: text("project_id") as string,
			clientEmail: text("client_email") as string,
			privateKey,
			privateKeyId: text("private_key_id"),
			tokenUri: baseUrl(
				"FCM_SERVICE_ACCOUNT.token_uri",
				text("token_uri") ?? DEFAULT_GOOGLE_TOKEN_URI,
				secure,
				problems,
			),
		},
		endpoint: baseUrl("FCM_ENDPOINT", env.FCM_ENDPOINT || DEFAULT_FCM_ENDPOINT, secure, problems),
	};
}

async function parseApns(env: Env, secure: boolean, problems: string[]): Promise<ApnsConfig | undefined> {
	const any = env.APNS_KEY || env.APNS_KEY_ID || env.APNS_TEAM_ID || env.APNS_TOPIC;
	if (!any) return undefined;
	const why = "APNs needs APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC";
	const key = required("APNS_KEY", env.APNS_KEY, problems, why);
	const keyId = required("APNS_KEY_ID", env.APNS_KEY_ID, problems, why);
	const teamId = required("APNS_TEAM_ID", env.APNS_TEAM_ID, problems, why);
	const topic = required("APNS_TOPIC", env.APNS_TOPIC, problems, why);
	if (keyId && !/^[A-Z0-9]{10}$/.test(keyId)) problems.push("APNS_KEY_ID must be the key's 10-character id");
	if (teamId && !/^[A-Z0-9]{10}$/.test(teamId)) problems.push("APNS_TEAM_ID must be the 10-character team id");
	if (key) await importable("APNS_KEY", key, "ES256", problems);
	const transport = env.APNS_TRANSPORT || "relay";
	if (transport !== "relay" && transport !== "direct") problems.push("APNS_TRANSPORT must be relay or direct");
	const relay = env.APNS_RELAY_URL || env.MEDIA_NODE_URL;
	if (transport === "relay" && !relay) {
		problems.push("APNS_RELAY_URL is missing (APNs needs HTTP/2: relay through the media node, or APNS_TRANSPORT)");
	}
	return {
		key,
		keyId,
		teamId,
		topic,
		endpoint: baseUrl("APNS_ENDPOINT", env.APNS_ENDPOINT || DEFAULT_APNS_ENDPOINT, secure, problems),
		transport: transport === "direct" ? "direct" : "relay",
		relayUrl: relay ? baseUrl("APNS_RELAY_URL", relay, false, problems) : undefined,
		relaySecret: env.MEDIA_NODE_SECRET ?? "",
	};
}

const P256_RAW_PUBLIC_BYTES = 65;

async function parseWebPush(env: Env, dev: boolean, problems: string[]): Promise<WebPushConfig | undefined> {
	if (!env.VAPID_PRIVATE_KEY && !env.VAPID_PUBLIC_KEY && !env.VAPID_SUBJECT) return undefined;
	const privateRaw = providerSecret("VAPID_PRIVATE_KEY", env.VAPID_PRIVATE_KEY, problems, 43);
	const subject = required("VAPID_SUBJECT", env.VAPID_SUBJECT, problems, "a mailto: or https: contact");
	if (subject && !/^(mailto:|https:\/\/)/.test(subject)) problems.push("VAPID_SUBJECT must be a mailto: or https: URL");
	let jwk: { x?: string; y?: string; d?: string } = {};
	try {
		if (privateRaw.trim().startsWith("{")) {
			jwk = JSON.parse(privateRaw) as { x?: string; y?: string; d?: string };
		} else if (privateRaw) {
			const d = fromBase64Url(privateRaw);
			if (d.length !== 32) throw new Error("the private scalar must be 32 bytes");
			jwk = { d: toBase64Url(d) };
		}
	} catch (error) {
		problems.push(`VAPID_PRIVATE_KEY is invalid: ${(error as Error).message}`);
		return undefined;
	}
	let publicKey = env.VAPID_PUBLIC_KEY ?? "";
	if (publicKey) {
		const point = safeDecode(publicKey);
		if (point?.length !== P256_RAW_PUBLIC_BYTES || point[0] !== 4) {
			problems.push("VAPID_PUBLIC_KEY must be the base64url uncompressed P-256 point (65 bytes)");
			return undefined;
		}
		const x = toBase64Url(point.subarray(1, 33));
		const y = toBase64Url(point.subarray(33, 65));
		if ((jwk.x && jwk.x !== x) || (jwk.y && jwk.y !== y)) {
			problems.push("VAPID_PUBLIC_KEY does not match VAPID_PRIVATE_KEY");
			return undefined;
		}
		jwk = { ...jwk, x, y };
	} else if (jwk.x && jwk.y) {
		publicKey = toBase64Url(new Uint8Array([4, ...fromBase64Url(jwk.x), ...fromBase64Url(jwk.y)]));
	} else {
		problems.push("VAPID_PUBLIC_KEY is missing");
		return undefined;
	}
	const privateJwk: JsonWebKey = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d };
	try {
		const signer = await crypto.subtle.importKey("jwk", privateJwk, { name: "ECDSA", namedCurve: "P-256" }, false, [
			"sign",
		]);
		const verifier = await crypto.subtle.importKey(
			"raw",
			fromBase64Url(publicKey),
			{ name: "ECDSA", namedCurve: "P-256" },
			false,
			["verify"],
		);
		// The pair must belong together: sign and verify one probe.
		const probe = new Uint8Array([1, 2, 3]);
		const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, signer, probe);
		if (!(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, verifier, sig, probe))) {
			throw new Error("the public key does not match the private key");
		}
	} catch (error) {
		problems.push(`VAPID_PRIVATE_KEY is invalid: ${(error as Error).message}`);
		return undefined;
	}
	return { publicKey, privateJwk, subject, allowInsecureEndpoints: dev };
}

function safeDecode(s: string): Uint8Array | undefined {
	try {
		return fromBase64Url(s);
	} catch {
		return undefined;
	}
}

function parseEmail(env: Env, environment: Environment, timeoutMs: number, problems: string[]): EmailConfig {
	const dev = environment === "dev" || environment === "test";
	const provider = env.EMAIL_PROVIDER || (dev ? "dev" : "");
	const base = {
		timeoutMs,
		clearBodiesAfterSend: !dev,
		resend: undefined,
		smtp: undefined,
		from: env.EMAIL_FROM || DEV_EMAIL_FROM,
	};
	if (!provider) {
		problems.push(`EMAIL_PROVIDER is missing (resend or smtp in ${environment})`);
		return { ...base, provider: "dev" };
	}
	if (provider === "dev") {
		if (!dev) problems.push(`EMAIL_PROVIDER=dev delivers to the dev mailbox and is refused in ${environment}`);
		return { ...base, provider: "dev" };
	}
	if (provider !== "resend" && provider !== "smtp") {
		problems.push("EMAIL_PROVIDER must be resend, smtp or dev");
		return { ...base, provider: "dev" };
	}
	const from = required("EMAIL_FROM", env.EMAIL_FROM, problems, `the sender address for ${provider}`);
	if (/[\r\n]/.test(from)) problems.push("EMAIL_FROM must be one line");
	if (provider === "resend") {
		return {
			...base,
			provider,
			from,
			resend: {
				apiKey: providerSecret("EMAIL_API_KEY", env.EMAIL_API_KEY, problems, 16),
				endpoint: baseUrl("EMAIL_ENDPOINT", env.EMAIL_ENDPOINT || DEFAULT_RESEND_ENDPOINT, !dev, problems),
			},
		};
	}
	const tls = env.SMTP_TLS || "starttls";
	if (tls !== "starttls" && tls !== "implicit" && tls !== "off")
		problems.push("SMTP_TLS must be starttls, implicit or off");
	if (tls === "off" && !dev) problems.push(`SMTP_TLS=off is refused in ${environment}`);
	const port = Number(env.SMTP_PORT || (tls === "implicit" ? 465 : 587));
	if (!Number.isInteger(port) || port < 1 || port > 65_535) problems.push("SMTP_PORT must be a TCP port");
	const user = env.SMTP_USER || undefined;
	return {
		...base,
		provider,
		from,
		smtp: {
			host: required("SMTP_HOST", env.SMTP_HOST, problems, "the SMTP server"),
			port,
			user,
			password: user ? providerSecret("SMTP_PASSWORD", env.SMTP_PASSWORD, problems, 8) : undefined,
			tls: tls === "implicit" || tls === "off" ? tls : "starttls",
			requireTls: !dev,
		},
	};
}

export async function parseNotificationConfig(
	env: Env,
	environment: Environment,
	problems: string[],
): Promise<NotificationConfig> {
	const dev = environment === "dev" || environment === "test";
	const timeout = Number(env.NOTIFICATION_TIMEOUT_MS || DEFAULT_NOTIFICATION_TIMEOUT_MS);
	if (!Number.isInteger(timeout) || timeout <= 0) problems.push("NOTIFICATION_TIMEOUT_MS must be a positive integer");
	const timeoutMs = timeout > 0 ? timeout : DEFAULT_NOTIFICATION_TIMEOUT_MS;
	const [fcm, apns, webpush] = await Promise.all([
		parseFcm(env, !dev, problems),
		parseApns(env, !dev, problems),
		parseWebPush(env, dev, problems),
	]);
	return {
		push: { timeoutMs, fcm, apns, webpush },
		email: parseEmail(env, environment, timeoutMs, problems),
	};
}
