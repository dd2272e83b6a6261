// Media node configuration, read from environment variables and validated
// with zod. Every problem is reported at once, naming the variable.
//
//   MEDIA_NODE_HOST        HTTP listen address              (127.0.0.1)
//   MEDIA_NODE_PORT        HTTP port, 0 = ephemeral         (8790)
//   MEDIA_WORKERS          mediasoup workers                (min(CPUs, 4))
//   MEDIA_RTC_LISTEN_IP    IP the RTC sockets bind to       (127.0.0.1)
//   MEDIA_ANNOUNCED_IP     IP or hostname put in ICE candidates (127.0.0.1)
//   MEDIA_RTC_MIN_PORT     first RTC (UDP/TCP) port         (40000)
//   MEDIA_RTC_MAX_PORT     last RTC port                    (49999)
//   LOG_LEVEL              debug | info | warn | error      (info)

import os from "node:os";

import { z } from "zod";
import type { LogLevel } from "./Logger.ts";
import { LOG_LEVELS } from "./Logger.ts";

export const DEFAULT_HTTP_HOST = "127.0.0.1";
export const DEFAULT_HTTP_PORT = 8790;
export const MAX_DEFAULT_WORKERS = 4;
export const MAX_WORKERS = 64;
export const DEFAULT_RTC_LISTEN_IP = "127.0.0.1";
export const DEFAULT_ANNOUNCED_IP = "127.0.0.1";
export const DEFAULT_RTC_MIN_PORT = 40000;
export const DEFAULT_RTC_MAX_PORT = 49999;
export const MIN_UNPRIVILEGED_PORT = 1024;
export const MAX_PORT = 65535;
export const DEFAULT_LOG_LEVEL: LogLevel = "info";

export type MediaNodeConfig = {
	http: { host: string; port: number };
	workers: number;
	rtc: {
		listenIp: string;
		announcedAddress: string;
		minPort: number;
		maxPort: number;
	};
	logLevel: LogLevel;
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

const HOSTNAME_RE =
	/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: "must be an IPv4 or IPv6 address" });

const ipOrHostname = z.union([z.ipv4(), z.ipv6(), z.string().regex(HOSTNAME_RE)], {
	error: "must be an IPv4/IPv6 address or a hostname",
});

function buildSchema(defaultWorkers: number) {
	return z
		.object({
			MEDIA_NODE_HOST: z.preprocess(unsetIfEmpty, ipOrHostname.default(DEFAULT_HTTP_HOST)),
			MEDIA_NODE_PORT: integer(0, MAX_PORT, DEFAULT_HTTP_PORT),
			MEDIA_WORKERS: integer(1, MAX_WORKERS, defaultWorkers),
			MEDIA_RTC_LISTEN_IP: z.preprocess(unsetIfEmpty, ipAddress.default(DEFAULT_RTC_LISTEN_IP)),
			MEDIA_ANNOUNCED_IP: z.preprocess(unsetIfEmpty, ipOrHostname.default(DEFAULT_ANNOUNCED_IP)),
			MEDIA_RTC_MIN_PORT: integer(MIN_UNPRIVILEGED_PORT, MAX_PORT, DEFAULT_RTC_MIN_PORT),
			MEDIA_RTC_MAX_PORT: integer(MIN_UNPRIVILEGED_PORT, MAX_PORT, DEFAULT_RTC_MAX_PORT),
			LOG_LEVEL: z.preprocess(
				(value) => (typeof unsetIfEmpty(value) === "string" ? String(value).trim().toLowerCase() : undefined),
				z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default(DEFAULT_LOG_LEVEL),
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

			return {
				variable,
				message: raw === undefined ? issue.message : `${issue.message} (got ${JSON.stringify(raw)})`,
			};
		});

		throw new ConfigError(issues);
	}

	const v = result.data;

	return {
		http: { host: v.MEDIA_NODE_HOST, port: v.MEDIA_NODE_PORT },
		workers: v.MEDIA_WORKERS,
		rtc: {
			listenIp: v.MEDIA_RTC_LISTEN_IP,
			announcedAddress: v.MEDIA_ANNOUNCED_IP,
			minPort: v.MEDIA_RTC_MIN_PORT,
			maxPort: v.MEDIA_RTC_MAX_PORT,
		},
		logLevel: v.LOG_LEVEL,
	};
}
