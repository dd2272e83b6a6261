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
		expect(config.logLevel).toBe("info");
	});

	it("reads every variable", () => {
		const config = loadConfig({
			MEDIA_NODE_HOST: "0.0.0.0",
			MEDIA_NODE_PORT: "0",
			MEDIA_WORKERS: "3",
			MEDIA_RTC_LISTEN_IP: "::",
			MEDIA_ANNOUNCED_IP: "media.example.com",
			MEDIA_RTC_MIN_PORT: "50000",
			MEDIA_RTC_MAX_PORT: "50100",
			LOG_LEVEL: "DEBUG",
		});

		expect(config).toEqual({
			http: { host: "0.0.0.0", port: 0 },
			workers: 3,
			rtc: { listenIp: "::", announcedAddress: "media.example.com", minPort: 50000, maxPort: 50100 },
			logLevel: "debug",
		});
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
