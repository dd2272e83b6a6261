import { describe, expect, it } from "vitest";

import {
	ConfigError,
	DEFAULT_ANNOUNCED_IP,
	DEFAULT_HTTP_HOST,
	DEFAULT_HTTP_PORT,
	defaultWorkerCount,
	loadConfig,
} from "./config.ts";

function configError(env: NodeJS.ProcessEnv): ConfigError {
	try {
		loadConfig(env);
	} catch (error) {
		if (error instanceof ConfigError) {
			return error;
		}
		throw error;
	}
	throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
	it("uses defaults for unset and empty variables", () => {
		const config = loadConfig({ MEDIA_NODE_PORT: "", LOG_LEVEL: "  " });

		expect(config.http).toEqual({ host: DEFAULT_HTTP_HOST, port: DEFAULT_HTTP_PORT });
		expect(config.workers).toBe(defaultWorkerCount());
		expect(config.workers).toBeGreaterThanOrEqual(1);
		expect(config.workers).toBeLessThanOrEqual(4);
		expect(config.rtc.announcedAddress).toBe(DEFAULT_ANNOUNCED_IP);
		expect(config.rtc.minPort).toBeLessThanOrEqual(config.rtc.maxPort);
		expect(config.rtc.port).toBe(40000);
		expect(config.logLevel).toBe("info");
		expect(config.node.region).toBe("local");
		expect(config.node.id).toMatch(/^[A-Za-z0-9]/);
		expect(config.api).toEqual({ url: undefined, issuer: undefined, jwksUrl: undefined, secret: undefined });
		expect(config.limits).toEqual({
			maxPeersPerCall: 100,
			maxPeers: 1000,
			routerMaxConsumers: 500,
			reconnectGraceMs: 10_000,
			drainTimeoutMs: 30_000,
		});
		expect(config.heartbeatMs).toBe(10_000);
	});

	it("derives the issuer and JWKS URL from API_URL", () => {
		const config = loadConfig({ API_URL: "https://api.example.com", MEDIA_NODE_SECRET: "s".repeat(32) });

		expect(config.api).toEqual({
			url: "https://api.example.com",
			issuer: "https://api.example.com",
			jwksUrl: "https://api.example.com/.well-known/jwks.json",
			secret: "s".repeat(32),
		});
		expect(loadConfig({ API_URL: "https://api.example.com", MEDIA_API_ISSUER: "secureconnect" }).api.issuer).toBe(
			"secureconnect",
		);
	});

	it("never echoes a bad secret, and wants 32 characters at least", () => {
		const error = configError({ MEDIA_NODE_SECRET: "short-secret" });

		expect(error.issues).toEqual([{ variable: "MEDIA_NODE_SECRET", message: "must be at least 32 characters" }]);
		expect(error.message).not.toContain("short-secret");
	});

	it("refuses per-worker WebRtcServer ports that overlap the dynamic range", () => {
		const error = configError({ MEDIA_RTC_PORT: "45000", MEDIA_WORKERS: "2" });

		expect(error.issues).toEqual([
			{ variable: "MEDIA_RTC_PORT", message: expect.stringContaining("overlap MEDIA_RTC_MIN_PORT") },
		]);
		expect(loadConfig({ MEDIA_RTC_PORT: "0" }).rtc.port).toBe(0);
		expect(configError({ MEDIA_RTC_PORT: "80" }).issues[0]?.variable).toBe("MEDIA_RTC_PORT");
	});

	it("reads every variable", () => {
		const config = loadConfig({
			MEDIA_NODE_HOST: "0.0.0.0",
			MEDIA_NODE_PORT: "0",
			MEDIA_WORKERS: "3",
			MEDIA_RTC_LISTEN_IP: "::",
			MEDIA_ANNOUNCED_IP: "media.example.com",
			MEDIA_RTC_PORT: "44000",
			MEDIA_RTC_MIN_PORT: "50000",
			MEDIA_RTC_MAX_PORT: "50100",
			LOG_LEVEL: "DEBUG",
			MEDIA_NODE_ID: "media-eu-1",
			MEDIA_REGION: "eu-west",
			MEDIA_PUBLIC_URL: "wss://media-eu-1.example.com/v1/rtc",
			API_URL: "https://api.example.com",
			MEDIA_API_ISSUER: "https://api.example.com",
			MEDIA_JWKS_URL: "https://keys.example.com/jwks.json",
			MEDIA_NODE_SECRET: "x".repeat(40),
			MEDIA_MAX_PEERS_PER_CALL: "250",
			MEDIA_MAX_PEERS: "2000",
			MEDIA_ROUTER_MAX_CONSUMERS: "800",
			MEDIA_RECONNECT_GRACE_MS: "15000",
			MEDIA_HEARTBEAT_MS: "5000",
			MEDIA_DRAIN_TIMEOUT_MS: "60000",
			MEDIA_STATS_INTERVAL_MS: "2000",
			MEDIA_EVENT_QUEUE_MAX: "5000",
			TURN_URLS: "stun:turn.example.com:3478, turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349",
			TURN_SECRET: "t".repeat(40),
			MEDIA_TURN_PROBE_INTERVAL_MS: "15000",
			MEDIA_TURN_PROBE_TIMEOUT_MS: "2000",
			MEDIA_TURN_PROBE_USER: "probe-eu-1",
		});

		expect(config).toEqual({
			http: { host: "0.0.0.0", port: 0 },
			workers: 3,
			rtc: { listenIp: "::", announcedAddress: "media.example.com", port: 44000, minPort: 50000, maxPort: 50100 },
			logLevel: "debug",
			node: { id: "media-eu-1", region: "eu-west", publicUrl: "wss://media-eu-1.example.com/v1/rtc" },
			api: {
				url: "https://api.example.com",
				issuer: "https://api.example.com",
				jwksUrl: "https://keys.example.com/jwks.json",
				secret: "x".repeat(40),
			},
			limits: {
				maxPeersPerCall: 250,
				maxPeers: 2000,
				routerMaxConsumers: 800,
				reconnectGraceMs: 15_000,
				drainTimeoutMs: 60_000,
			},
			heartbeatMs: 5000,
			statsIntervalMs: 2000,
			eventQueueMax: 5000,
			turn: {
				urls: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
				secret: "t".repeat(40),
				probeIntervalMs: 15_000,
				probeTimeoutMs: 2_000,
				probeUser: "probe-eu-1",
			},
		});
	});

	it("reads the TURN probe's settings: TURN URLs only, defaults, and a secret never echoed", () => {
		expect(loadConfig({}).turn).toEqual({
			urls: [],
			secret: undefined,
			probeIntervalMs: 30_000,
			probeTimeoutMs: 5_000,
			probeUser: "secureconnect-probe",
		});
		expect(loadConfig({ TURN_URLS: "stun:127.0.0.1:3478" }).turn.urls).toEqual([]);

		const error = configError({
			TURN_URLS: "turn:ok.example.com,http://nope.example.com",
			TURN_SECRET: "x".repeat(600),
			MEDIA_TURN_PROBE_INTERVAL_MS: "2000",
			MEDIA_TURN_PROBE_TIMEOUT_MS: "5000",
			MEDIA_TURN_PROBE_USER: "a:b",
		});
		const byVariable = Object.fromEntries(error.issues.map((i) => [i.variable, i.message]));

		expect(Object.keys(byVariable).sort()).toEqual([
			"MEDIA_TURN_PROBE_TIMEOUT_MS",
			"MEDIA_TURN_PROBE_USER",
			"TURN_SECRET",
			"TURN_URLS",
		]);
		expect(byVariable.TURN_URLS).toContain("stun:, turn: and turns: URLs");
		expect(byVariable.MEDIA_TURN_PROBE_TIMEOUT_MS).toContain("shorter than MEDIA_TURN_PROBE_INTERVAL_MS (2000)");
		expect(error.message).not.toContain("x".repeat(600));
	});

	it("reports every invalid variable by name, with the bad value", () => {
		const error = configError({
			MEDIA_NODE_PORT: "eighty",
			MEDIA_WORKERS: "0",
			MEDIA_RTC_LISTEN_IP: "localhost",
			LOG_LEVEL: "verbose",
		});
		const byVariable = Object.fromEntries(error.issues.map((i) => [i.variable, i.message]));

		expect(Object.keys(byVariable).sort()).toEqual([
			"LOG_LEVEL",
			"MEDIA_NODE_PORT",
			"MEDIA_RTC_LISTEN_IP",
			"MEDIA_WORKERS",
		]);
		expect(byVariable.MEDIA_NODE_PORT).toBe('must be a whole number from 0 to 65535 (got "eighty")');
		expect(byVariable.MEDIA_WORKERS).toBe('must be at least 1 (got "0")');
		expect(byVariable.MEDIA_RTC_LISTEN_IP).toContain("IPv4 or IPv6");
		expect(byVariable.LOG_LEVEL).toContain("debug, info, warn, error");
		expect(error.message).toContain("Invalid media-node configuration");
		expect(error.message).toContain("MEDIA_NODE_PORT");
	});

	it("rejects an inverted RTC port range", () => {
		const error = configError({ MEDIA_RTC_MIN_PORT: "50000", MEDIA_RTC_MAX_PORT: "40000" });

		expect(error.issues).toEqual([
			{ variable: "MEDIA_RTC_MIN_PORT", message: expect.stringContaining("MEDIA_RTC_MAX_PORT (40000)") },
		]);
	});
});
