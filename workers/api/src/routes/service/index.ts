import { createRoute } from "@hono/zod-openapi";
import { Health, Jwks, Readiness } from "@secureconnect/protocol";
import { createRouter } from "../../openapi.ts";
import { runReadinessChecks } from "./readiness.ts";

const health = createRoute({
	method: "get",
	path: "/health",
	tags: ["Service"],
	summary: "Liveness: 200 while the worker runs",
	responses: { 200: { description: "Alive", content: { "application/json": { schema: Health } } } },
});

const ready = createRoute({
	method: "get",
	path: "/ready",
	tags: ["Service"],
	summary: "Readiness: every dependency answers within its timeout",
	responses: {
		200: { description: "Ready", content: { "application/json": { schema: Readiness } } },
		503: {
			description: "A dependency is failing; the body names it",
			content: { "application/json": { schema: Readiness } },
		},
	},
});

const jwks = createRoute({
	method: "get",
	path: "/.well-known/jwks.json",
	tags: ["Service"],
	summary: "Public keys that verify access and call tokens",
	responses: { 200: { description: "JSON Web Key Set", content: { "application/json": { schema: Jwks } } } },
});

export const serviceRoutes = createRouter()
	.openapi(health, (c) => c.json({ status: "ok" as const }, 200))
	.openapi(ready, async (c) => {
		const checks = await runReadinessChecks(c.env);
		const failing = Object.entries(checks)
			.filter(([, state]) => state === "failing")
			.map(([name]) => name);
		if (failing.length > 0) {
			c.var.log.warn("not ready", { failing });
			c.header("retry-after", "5");
			c.header("cache-control", "no-store");
			return c.json({ status: "not_ready" as const, checks }, 503);
		}
		c.header("cache-control", "no-store");
		return c.json({ status: "ready" as const, checks }, 200);
	});

/** Served after config loads: it needs the signing keys. */
export const jwksRoutes = createRouter().openapi(jwks, (c) => {
	c.header("cache-control", "public, max-age=300");
	return c.json({ keys: c.var.config.signingKeys.keys.map((k) => ({ ...k.publicJwk })) as Jwks["keys"] }, 200);
});
