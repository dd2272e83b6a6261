import { defineConfig } from "drizzle-kit";

export default defineConfig({
	dialect: "postgresql",
	schema: "./workers/api/src/db/schema/index.ts",
	out: "./migrations",
});
