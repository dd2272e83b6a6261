// Media node configuration, read from environment variables and validated
// with zod. Every problem is reported at once, naming the variable. The
// README lists every variable with its default.

import os from "node:os";

import { z } from "zod";
import { parseTurnUrl } from "../../protocol/src/turn.ts";
import type { LogLevel } from "./Logger.ts";
import { LOG_LEVELS } from "./Logger.ts";

export const DEFAULT_HTTP_HOST = "127.0.0.1";
export const DEFAULT_HTTP_PORT = 8790;
export const MAX_DEFAULT_WORKERS = 4;
export const MAX_WORKERS = 64;
export const DEFAULT_RTC_LISTEN_IP = "127.0.0.1";
export const DEFAULT_ANNOUNCED_IP = "127.0.0.1";
/** Worker i's WebRtcServer listens on UDP and TCP port MEDIA_RTC_PORT + i. */
export const DEFAULT_RTC_PORT = 40000;
/** Ports for internal pipe transports (and WebRtcServers when MEDIA_RTC_PORT is 0). */
export const DEFAULT_RTC_MIN_PORT = 40100;
export const DEFAULT_RTC_MAX_PORT = 49999;
export const MIN_UNPRIVILEGED_PORT = 1024;
export const MAX_PORT = 65535;
export const DEFAULT_LOG_LEVEL: LogLevel = "info";
export const DEFAULT_REGION = "local";
export const DEFAULT_MAX_PEERS_PER_CALL = 100;
export const DEFAULT_MAX_PEERS = 1000;
export const DEFAULT_ROUTER_MAX_CONSUMERS = 500;
export const DEFAULT_RECONNECT_GRACE_MS = 10_000;
export const DEFAULT_HEARTBEAT_MS = 10_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
export const DEFAULT_STATS_INTERVAL_MS = 5_000;
export const DEFAULT_EVENT_QUEUE_MAX = 1000;
export const MIN_SECRET_LENGTH = 32;
export const DEFAULT_TURN_PROBE_INTERVAL_MS = 30_000;
export const DEFAULT_TURN_PROBE_TIMEOUT_MS = 5_000;
/** The user part of the probe's TURN REST username (`<expiry>:<user>`). */
export const DEFAULT_TURN_PROBE_USER = "secureconnect-probe";
export const JWKS_PATH = "/.well-known/jwks.json";

export type MediaNodeConfig = {
	http: { host: string; port: number };
	workers: number;
	rtc: {
		listenIp: string;
		announcedAddress: string;
		/** Base port of the per-worker WebRtcServers; 0 = any port in [minPort, maxPort]. */
		port: number;
		minPort: number;
		maxPort: number;
	};
	logLevel: LogLevel;
	node: {
		id: string;
		region: string;
		/** Public ws(s) URL of /v1/rtc; undefined = derived from the announced address and HTTP port. */
		publicUrl: string | undefined;
	};
	api: {
		/** Base URL of the api; undefined = standalone. */
		url: string | undefined;
		/** Expected `iss` of call tokens. */
		issuer: string | undefined;
		/** Where the api's public keys are; undefined = no token can be verified. */
		jwksUrl: string | undefined;
		/** HMAC key for requests to and from the api; undefined = standalone. */
		secret: string | undefined;
	};
	limits: {
		maxPeersPerCall: number;
		/** Node capacity (all calls), reported in heartbeats. */
		maxPeers: number;
		/** Consumers per router before a call spreads to another worker's router. */
		routerMaxConsumers: number;
		reconnectGraceMs: number;
		drainTimeoutMs: number;
	};
	heartbeatMs: number;
	statsIntervalMs: number;
	eventQueueMax: number;
	/** The TURN probe (TurnProbe.ts): on when `urls` is not empty and `secret` is set. */
	turn: {
		/** The `turn:`/`turns:` entries of TURN_URLS (the api's list; `stun:` entries are left out). */
		urls: string[];
		/** coturn's static-auth-secret (the api's TURN_SECRET). */
		secret: string | undefined;
		probeIntervalMs: number;
		probeTimeoutMs: number;
		probeUser: string;
	};
};

export type ConfigIssue = { variable: string; message: string };

export class ConfigError extends Error {
	readonly issues: ConfigIssue[];

	constructor(issues: ConfigIssue[]) {
		super(`Invalid media-node configuration:\n${issues.map((i) => `  - ${i.variable}: ${i.message}`).join("\n")}`);
		this.name = "ConfigError";
		this.issues = issues;
	}
}

// Unset and empty variables both mean "use the default".
const unsetIfEmpty = (value: unknown): unknown =>
	typeof value === "string" && value.trim() === "" ? undefined : value;

function integer(min: number, max: number, fallback: number) {
	return z.preprocess(
		unsetIfEmpty,
		z
			.string()
			.trim()
			.regex(/^\d+$/, { error: `must be a whole number from ${min} to ${max}` })
			.transform(Number)
			.pipe(
				z
					.number()
					.int()
					.min(min, { error: `must be at least ${min}` })
					.max(max, { error: `must be at most ${max}` }),
			)
			.default(fallback),
	);
}

function optionalUrl(protocols: string[]) {
	return z.preprocess(
		unsetIfEmpty,
		z
			.string()
			.trim()
			.refine(
				(value) => {
					try {
						return protocols.includes(new URL(value).protocol);
					} catch {
						return false;
					}
				},
				{ error: `must be an absolute ${protocols.map((p) => p.replace(":", "")).join("/")} URL` },
			)
			.optional(),
	);
}

const HOSTNAME_RE =
	/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: "must be an IPv4 or IPv6 address" });

const ipOrHostname = z.union([z.ipv4(), z.ipv6(), z.string().regex(HOSTNAME_RE)], {
	error: "must be an IPv4/IPv6 address or a hostname",
});

function defaultNodeId(): string {
	const host = os
		.hostname()
		.replace(/[^A-Za-z0-9._-]/g, "-")
		.slice(0, 60);

	return NODE_ID_RE.test(host) ? host : "media-node";
}

function buildSchema(defaultWorkers: number) {
	return z
		.object({
			MEDIA_NODE_HOST: z.preprocess(unsetIfEmpty, ipOrHostname.default(DEFAULT_HTTP_HOST)),
			MEDIA_NODE_PORT: integer(0, MAX_PORT, DEFAULT_HTTP_PORT),
			MEDIA_WORKERS: integer(1, MAX_WORKERS, defaultWorkers),
			MEDIA_RTC_LISTEN_IP: z.preprocess(unsetIfEmpty, ipAddress.default(DEFAULT_RTC_LISTEN_IP)),
			MEDIA_ANNOUNCED_IP: z.preprocess(unsetIfEmpty, ipOrHostname.default(DEFAULT_ANNOUNCED_IP)),
			MEDIA_RTC_PORT: z.preprocess(
				unsetIfEmpty,
				z
					.string()
					.trim()
					.regex(/^\d+$/, { error: `must be 0 or a port from ${MIN_UNPRIVILEGED_PORT} to ${MAX_PORT}` })
					.transform(Number)
					.pipe(
						z
							.number()
							.int()
							.refine((n) => n === 0 || (n >= MIN_UNPRIVILEGED_PORT && n <= MAX_PORT), {
								error: `must be 0 or a port from ${MIN_UNPRIVILEGED_PORT} to ${MAX_PORT}`,
							}),
					)
					.default(DEFAULT_RTC_PORT),
			),
			MEDIA_RTC_MIN_PORT: integer(MIN_UNPRIVILEGED_PORT, MAX_PORT, DEFAULT_RTC_MIN_PORT),
			MEDIA_RTC_MAX_PORT: integer(MIN_UNPRIVILEGED_PORT, MAX_PORT, DEFAULT_RTC_MAX_PORT),
			LOG_LEVEL: z.preprocess(
				(value) => (typeof unsetIfEmpty(value) === "string" ? String(value).trim().toLowerCase() : undefined),
				z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default(DEFAULT_LOG_LEVEL),
			),
			MEDIA_NODE_ID: z.preprocess(
				unsetIfEmpty,
				z
					.string()
					.trim()
					.regex(NODE_ID_RE, { error: "must be 1-64 characters of A-Z a-z 0-9 . _ : -" })
					.default(defaultNodeId),
			),
			MEDIA_REGION: z.preprocess(
				unsetIfEmpty,
				z
					.string()
					.trim()
					.regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "must be 1-64 characters of A-Z a-z 0-9 . _ -" })
					.default(DEFAULT_REGION),
			),
			MEDIA_PUBLIC_URL: optionalUrl(["ws:", "wss:"]),
			API_URL: optionalUrl(["http:", "https:"]),
			MEDIA_API_ISSUER: z.preprocess(unsetIfEmpty, z.string().trim().max(512).optional()),
			MEDIA_JWKS_URL: optionalUrl(["http:", "https:"]),
			MEDIA_NODE_SECRET: z.preprocess(
				unsetIfEmpty,
				z
					.string()
					.min(MIN_SECRET_LENGTH, { error: `must be at least ${MIN_SECRET_LENGTH} characters` })
					.max(512, { error: "must be at most 512 characters" })
					.optional(),
			),
			MEDIA_MAX_PEERS_PER_CALL: integer(1, 100_000, DEFAULT_MAX_PEERS_PER_CALL),
			MEDIA_MAX_PEERS: integer(1, 1_000_000, DEFAULT_MAX_PEERS),
			MEDIA_ROUTER_MAX_CONSUMERS: integer(1, 1_000_000, DEFAULT_ROUTER_MAX_CONSUMERS),
			MEDIA_RECONNECT_GRACE_MS: integer(0, 600_000, DEFAULT_RECONNECT_GRACE_MS),
			MEDIA_HEARTBEAT_MS: integer(100, 3_600_000, DEFAULT_HEARTBEAT_MS),
			MEDIA_DRAIN_TIMEOUT_MS: integer(0, 3_600_000, DEFAULT_DRAIN_TIMEOUT_MS),
			MEDIA_STATS_INTERVAL_MS: integer(100, 3_600_000, DEFAULT_STATS_INTERVAL_MS),
			MEDIA_EVENT_QUEUE_MAX: integer(1, 1_000_000, DEFAULT_EVENT_QUEUE_MAX),
			TURN_URLS: z.preprocess(
				unsetIfEmpty,
				z
					.string()
					.transform((value) =>
						value
							.split(",")
							.map((url) => url.trim())
							.filter(Boolean),
					)
					.refine((urls) => urls.every((url) => /^stuns?:/i.test(url) || parseTurnUrl(url) !== undefined), {
						error: "must be a comma-separated list of stun:, turn: and turns: URLs (RFC 7064/7065)",
					})
					.default([]),
			),
			TURN_SECRET: z.preprocess(
				unsetIfEmpty,
				z.string().max(512, { error: "must be at most 512 characters" }).optional(),
			),
			MEDIA_TURN_PROBE_INTERVAL_MS: integer(1_000, 3_600_000, DEFAULT_TURN_PROBE_INTERVAL_MS),
			MEDIA_TURN_PROBE_TIMEOUT_MS: integer(100, 60_000, DEFAULT_TURN_PROBE_TIMEOUT_MS),
			MEDIA_TURN_PROBE_USER: z.preprocess(
				unsetIfEmpty,
				z
					.string()
					.trim()
					.regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "must be 1-64 characters of A-Z a-z 0-9 . _ -" })
					.default(DEFAULT_TURN_PROBE_USER),
			),
		})
		.superRefine((value, ctx) => {
			if (value.MEDIA_RTC_MIN_PORT > value.MEDIA_RTC_MAX_PORT) {
				ctx.addIssue({
					code: "custom",
					path: ["MEDIA_RTC_MIN_PORT"],
					message: `must not be greater than MEDIA_RTC_MAX_PORT (${value.MEDIA_RTC_MAX_PORT})`,
				});
			}

			if (value.MEDIA_TURN_PROBE_TIMEOUT_MS >= value.MEDIA_TURN_PROBE_INTERVAL_MS) {
				ctx.addIssue({
					code: "custom",
					path: ["MEDIA_TURN_PROBE_TIMEOUT_MS"],
					message: `must be shorter than MEDIA_TURN_PROBE_INTERVAL_MS (${value.MEDIA_TURN_PROBE_INTERVAL_MS})`,
				});
			}

			const base = value.MEDIA_RTC_PORT;

			if (base !== 0) {
				const last = base + value.MEDIA_WORKERS - 1;

				if (last > MAX_PORT) {
					ctx.addIssue({
						code: "custom",
						path: ["MEDIA_RTC_PORT"],
						message: `needs ${value.MEDIA_WORKERS} ports (one per worker) up to ${last}, above ${MAX_PORT}`,
					});
				} else if (base <= value.MEDIA_RTC_MAX_PORT && last >= value.MEDIA_RTC_MIN_PORT) {
					ctx.addIssue({
						code: "custom",
						path: ["MEDIA_RTC_PORT"],
						message: `ports ${base}-${last} (one per worker) overlap MEDIA_RTC_MIN_PORT..MEDIA_RTC_MAX_PORT (${value.MEDIA_RTC_MIN_PORT}-${value.MEDIA_RTC_MAX_PORT})`,
					});
				}
			}
		});
}

export function defaultWorkerCount(): number {
	return Math.max(1, Math.min(os.availableParallelism(), MAX_DEFAULT_WORKERS));
}

/** Reads and validates the configuration; throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): MediaNodeConfig {
	const result = buildSchema(defaultWorkerCount()).safeParse(env);

	if (!result.success) {
		const issues = result.error.issues.map((issue) => {
			const variable = String(issue.path[0] ?? "(config)");
			const raw = env[variable];
			// Never echo a secret back into logs.
			const shown =
				variable === "MEDIA_NODE_SECRET" || variable === "TURN_SECRET" || raw === undefined
					? undefined
					: JSON.stringify(raw);

			return { variable, message: shown === undefined ? issue.message : `${issue.message} (got ${shown})` };
		});

		throw new ConfigError(issues);
	}

	const v = result.data;
	const apiUrl = v.API_URL;

	return {
		http: { host: v.MEDIA_NODE_HOST, port: v.MEDIA_NODE_PORT },
		workers: v.MEDIA_WORKERS,
		rtc: {
			listenIp: v.MEDIA_RTC_LISTEN_IP,
			announcedAddress: v.MEDIA_ANNOUNCED_IP,
			port: v.MEDIA_RTC_PORT,
			minPort: v.MEDIA_RTC_MIN_PORT,
			maxPort: v.MEDIA_RTC_MAX_PORT,
		},
		logLevel: v.LOG_LEVEL,
		node: { id: v.MEDIA_NODE_ID, region: v.MEDIA_REGION, publicUrl: v.MEDIA_PUBLIC_URL },
		api: {
			url: apiUrl,
			issuer: v.MEDIA_API_ISSUER ?? apiUrl,
			jwksUrl: v.MEDIA_JWKS_URL ?? (apiUrl === undefined ? undefined : new URL(JWKS_PATH, apiUrl).href),
			secret: v.MEDIA_NODE_SECRET,
		},
		limits: {
			maxPeersPerCall: v.MEDIA_MAX_PEERS_PER_CALL,
			maxPeers: v.MEDIA_MAX_PEERS,
			routerMaxConsumers: v.MEDIA_ROUTER_MAX_CONSUMERS,
			reconnectGraceMs: v.MEDIA_RECONNECT_GRACE_MS,
			drainTimeoutMs: v.MEDIA_DRAIN_TIMEOUT_MS,
		},
		heartbeatMs: v.MEDIA_HEARTBEAT_MS,
		statsIntervalMs: v.MEDIA_STATS_INTERVAL_MS,
		eventQueueMax: v.MEDIA_EVENT_QUEUE_MAX,
		turn: {
			urls: [...new Set(v.TURN_URLS.filter((url) => parseTurnUrl(url) !== undefined))],
			secret: v.TURN_SECRET,
			probeIntervalMs: v.MEDIA_TURN_PROBE_INTERVAL_MS,
			probeTimeoutMs: v.MEDIA_TURN_PROBE_TIMEOUT_MS,
			probeUser: v.MEDIA_TURN_PROBE_USER,
		},
	};
}
