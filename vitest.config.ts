import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		projects: [
			{
				plugins: [
					cloudflareTest(({ inject }) => ({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								ENVIRONMENT: "test",
								DATABASE_URL: inject("databaseUrl"),
								DB_WS_PROXY: inject("dbWsProxy"),
								...inject("secrets"),
								...inject("notificationBindings"),
							},
						},
					})),
				],
				test: {
					name: "workers",
					include: ["workers/**/*.test.ts", "sdk/**/*.test.ts"],
					globalSetup: ["./workers/test/global-setup.ts"],
					testTimeout: 20_000,
					// Intercepted, a console line from another request's context (a Durable Object, a
					// waitUntil) is held until the runner next writes to vitest and its reply awaited at
					// the end of the file: with nothing written after it, the run hangs there for good.
					disableConsoleIntercept: true,
				},
			},
			{
				test: {
					name: "node",
					environment: "node",
					include: ["media-node/src/**/*.test.ts", "scripts/**/*.test.ts", "protocol/**/*.test.ts"],
					testTimeout: 30_000,
				},
			},
		],
	},
});
