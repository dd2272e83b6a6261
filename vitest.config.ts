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
