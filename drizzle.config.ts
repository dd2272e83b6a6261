import { defineConfig } from "drizzle-kit";

export default defineConfig({
	dialect: "postgresql",
	schema: "./workers/api/src/db/schema.ts",
	out: "./migrations",
});
