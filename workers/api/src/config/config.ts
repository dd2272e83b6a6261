// Turns raw bindings into a validated configuration. A missing or weak secret
// is reported by name (never by value) so an operator knows what to fix.
import { z } from "zod";
import { DEFAULT_ISSUER } from "../auth/access-token.ts";
import { DEFAULT_MAX_CALL_PARTICIPANTS, DEFAULT_NODE_STALE_SECONDS, DEFAULT_RING_SECONDS } from "../calls/service.ts";
import { DEFAULT_TURN_TTL_SECONDS, type TurnConfig } from "../calls/turn.ts";
import type { Env } from "../env.ts";
import { type EmailConfig, type PushConfig, parseNotificationConfig } from "../notifications/config.ts";
import { type RatePolicies, ratePolicies } from "../rate-limit/policies.ts";
import { SigningKeySet } from "./signing-keys.ts";

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_DB_TIMEOUT_MS = 5_000;
export const DEFAULT_CHECK_TIMEOUT_MS = 2_000;
export const DEFAULT_SESSION_IDLE_DAYS = 30;
export const DEFAULT_REFRESH_REUSE_GRACE_SECONDS = 0;

export const ENVIRONMENTS = ["dev", "test", "staging", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Values that have shipped as defaults somewhere; never accepted as secrets. */
const KNOWN_WEAK =
	/^(changeme|change-me|secret|password|default|test|dev|example|minioadmin|supersecret|super-secret)/i;
const MIN_SECRET_CHARS = 32;

export class ConfigError extends Error {
	readonly problems: string[];
	constructor(problems: string[]) {
		super(`Invalid configuration: ${problems.join("; ")}`);
		this.name = "ConfigError";
		this.problems = problems;
	}
}

export interface Config {
	environment: Environment;
	publicUrl: string | undefined;
	/** `iss` of every token the api signs. */
	issuer: string;
	corsOrigins: string[];
	maxBodyBytes: number;
	database: { url: string; wsProxy: string | undefined; timeoutMs: number };
	mediaNodeUrl: string | undefined;
	signingKeys: SigningKeySet;
	passwordPepper: Uint8Array;
	mediaNodeSecret: string;
	turnSecret: string | undefined;
	sessions: { refreshIdleSeconds: number; refreshReuseGraceSeconds: number };
	turn: TurnConfig;
	calls: {
		ringSeconds: number;
		maxParticipants: number;
		/** A media node silent this long is dead: no new calls, and its calls move on their next join. */
		nodeStaleSeconds: number;
	};
	rateLimits: RatePolicies;
	push: PushConfig;
	email: EmailConfig;
}

function strongSecret(name: string, value: string | undefined, problems: string[]): string {
	if (!value) {
		problems.push(`${name} is missing (set it with \`wrangler secret put ${name}\`, or in .dev.vars locally)`);
		return "";
	}
	if (value.length < MIN_SECRET_CHARS || KNOWN_WEAK.test(value) || new Set(value).size < 10) {
		problems.push(`${name} is too weak (use at least ${MIN_SECRET_CHARS} random characters)`);
	}
	return value;
}

const positiveInt = z.coerce.number().int().positive();

function positiveOr(raw: string | undefined, fallback: number): number {
	const value = Number(raw);
	return Number.isInteger(value) && value > 0 ? value : fallback;
}

export async function parseConfig(env: Env): Promise<Config> {
	const problems: string[] = [];
	const environment = z.enum(ENVIRONMENTS).safeParse(env.ENVIRONMENT ?? "dev");
	if (!environment.success) problems.push(`ENVIRONMENT must be one of ${ENVIRONMENTS.join(", ")}`);

	const maxBody = positiveInt.safeParse(env.MAX_BODY_BYTES ?? DEFAULT_MAX_BODY_BYTES);
	if (!maxBody.success) problems.push("MAX_BODY_BYTES must be a positive integer");

	if (!env.DATABASE_URL) problems.push("DATABASE_URL is missing");
	else if (!/^postgres(ql)?:\/\//.test(env.DATABASE_URL)) problems.push("DATABASE_URL must be a postgres:// URL");

	const pepper = strongSecret("PASSWORD_PEPPER", env.PASSWORD_PEPPER, problems);
	const mediaNodeSecret = strongSecret("MEDIA_NODE_SECRET", env.MEDIA_NODE_SECRET, problems);
	const turnSecret = env.TURN_SECRET ? strongSecret("TURN_SECRET", env.TURN_SECRET, problems) : undefined;

	const idleDays = positiveInt.safeParse(env.SESSION_IDLE_DAYS ?? DEFAULT_SESSION_IDLE_DAYS);
	if (!idleDays.success) problems.push("SESSION_IDLE_DAYS must be a positive integer");
	const grace = z.coerce
		.number()
		.int()
		.min(0)
		.max(60)
		.safeParse(env.REFRESH_REUSE_GRACE_SECONDS ?? DEFAULT_REFRESH_REUSE_GRACE_SECONDS);
	if (!grace.success) problems.push("REFRESH_REUSE_GRACE_SECONDS must be an integer from 0 to 60");
	let rateLimits: RatePolicies | undefined;
	try {
		rateLimits = ratePolicies(env.RATE_LIMITS);
	} catch (error) {
		problems.push(`RATE_LIMITS is invalid: ${(error as Error).message}`);
	}

	let signingKeys: SigningKeySet | undefined;
	if (!env.JWT_SIGNING_KEYS) {
		problems.push("JWT_SIGNING_KEYS is missing (a JSON array of private Ed25519 JWKs with kid)");
	} else {
		try {
			signingKeys = await SigningKeySet.fromSecret(env.JWT_SIGNING_KEYS);
		} catch (error) {
			problems.push(`JWT_SIGNING_KEYS is invalid: ${(error as Error).message}`);
		}
	}

	const notifications = await parseNotificationConfig(
		env,
		environment.success ? environment.data : "production",
		problems,
	);

	if (
		problems.length > 0 ||
		!environment.success ||
		!maxBody.success ||
		!signingKeys ||
		!idleDays.success ||
		!grace.success ||
		!rateLimits
	) {
		throw new ConfigError(problems);
	}
	return {
		environment: environment.data,
		publicUrl: env.PUBLIC_URL || undefined,
		issuer: env.PUBLIC_URL || DEFAULT_ISSUER,
		corsOrigins: (env.CORS_ORIGINS ?? "")
			.split(",")
			.map((o) => o.trim())
			.filter(Boolean),
		maxBodyBytes: maxBody.data,
		database: {
			url: env.DATABASE_URL as string,
			wsProxy: env.DB_WS_PROXY || undefined,
			timeoutMs: DEFAULT_DB_TIMEOUT_MS,
		},
		mediaNodeUrl: env.MEDIA_NODE_URL || undefined,
		signingKeys,
		passwordPepper: new TextEncoder().encode(pepper),
		mediaNodeSecret,
		turnSecret,
		sessions: { refreshIdleSeconds: idleDays.data * 86_400, refreshReuseGraceSeconds: grace.data },
		rateLimits,
		turn: {
			urls: (env.TURN_URLS ?? "")
				.split(",")
				.map((u) => u.trim())
				.filter(Boolean),
			secret: turnSecret,
			ttlSeconds: positiveOr(env.TURN_TTL_SECONDS, DEFAULT_TURN_TTL_SECONDS),
		},
		calls: {
			ringSeconds: positiveOr(env.CALL_RING_SECONDS, DEFAULT_RING_SECONDS),
			maxParticipants: positiveOr(env.MAX_CALL_PARTICIPANTS, DEFAULT_MAX_CALL_PARTICIPANTS),
			nodeStaleSeconds: positiveOr(env.MEDIA_NODE_STALE_SECONDS, DEFAULT_NODE_STALE_SECONDS),
		},
		...notifications,
	};
}

const cache = new WeakMap<Env, Promise<Config>>();

/** Parsed once per isolate and env object; bindings do not change under a running isolate. */
export function loadConfig(env: Env): Promise<Config> {
	let config = cache.get(env);
	if (!config) {
		config = parseConfig(env);
		cache.set(env, config);
		config.catch(() => cache.delete(env));
	}
	return config;
}
