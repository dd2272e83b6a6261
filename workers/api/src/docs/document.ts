// The document and its reader page are served by plain routes (app.doc31 and
// a rendered page); they are listed in the document beside everything else.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../types.ts";

export function documentReference(app: OpenAPIHono<AppEnv>): void {
	app.openAPIRegistry.registerPath({
		method: "get",
		path: "/openapi.json",
		tags: ["Service"],
		summary: "This document: OpenAPI 3.1, made from the route schemas",
		responses: {
			200: {
				description: "The OpenAPI 3.1 document",
				content: { "application/json": { schema: z.object({ openapi: z.string() }).passthrough() } },
			},
		},
	});
	app.openAPIRegistry.registerPath({
		method: "get",
		path: "/docs",
		tags: ["Service"],
		summary: "The API reference as a web page, rendered from this document",
		responses: { 200: { description: "HTML", content: { "text/html": { schema: z.string() } } } },
	});
}
