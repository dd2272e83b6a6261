import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { DEFAULT_MAX_BODY_BYTES } from "./config/config.ts";
import { documentReference } from "./docs/document.ts";
import { renderDocs } from "./docs/render.ts";
import { ApiError } from "./lib/api-error.ts";
import { accessLog } from "./middleware/access-log/index.ts";
import { config } from "./middleware/config/index.ts";
import { database } from "./middleware/database/index.ts";
import { notFoundHandler, onError } from "./middleware/error-handler/index.ts";
import { requestId } from "./middleware/request-id/index.ts";
import { API_TITLE, API_VERSION, createRouter } from "./openapi.ts";
import { adminRoutes } from "./routes/admin/index.ts";
import { authRoutes } from "./routes/auth/index.ts";
import { blockRoutes } from "./routes/blocks/index.ts";
import { callRoutes } from "./routes/calls/index.ts";
import { conversationRoutes } from "./routes/conversations/index.ts";
import { devRoutes } from "./routes/dev/index.ts";
import { deviceRoutes } from "./routes/devices/index.ts";
import { fileRoutes, STREAMED_UPLOAD_PATH } from "./routes/files/index.ts";
import { friendRoutes } from "./routes/friends/index.ts";
import { internalRoutes } from "./routes/internal/index.ts";
import { keyRoutes } from "./routes/keys/index.ts";
import { pushRoutes } from "./routes/push/index.ts";
import { realtimeRoutes } from "./routes/realtime/index.ts";
import { jwksRoutes, serviceRoutes } from "./routes/service/index.ts";
import { userRoutes } from "./routes/users/index.ts";
import { webApp } from "./web/assets.ts";

const OPENAPI_CONFIG = {
	openapi: "3.1.0",
	info: {
		title: API_TITLE,
		version: API_VERSION,
		description: "Accounts, end-to-end encrypted messaging, presence, files, notifications and calls.",
	},
} as const;

export function createApp() {
	const app = createRouter();
	app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
		type: "http",
		scheme: "bearer",
		bearerFormat: "JWT",
	});

	app.use("*", requestId(), accessLog());
	// The web app's files, before the api's headers and CORS (it sets its own CSP).
	app.use(
		"*",
		webApp(() => app.routes),
	);
	app.use(
		"*",
		secureHeaders({
			contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
			strictTransportSecurity: "max-age=63072000; includeSubDomains",
			referrerPolicy: "no-referrer",
		}),
	);
	app.use("*", async (c, next) => {
		const origins = (c.env.CORS_ORIGINS ?? "")
			.split(",")
			.map((o) => o.trim())
			.filter(Boolean);
		return cors({
			origin: (origin) => (origins.includes("*") || origins.includes(origin) ? origin : null),
			allowHeaders: [
				"authorization",
				"content-type",
				"x-request-id",
				"traceparent",
				"idempotency-key",
				"range",
				"if-none-match",
				"if-range",
			],
			exposeHeaders: ["x-request-id", "retry-after", "etag", "content-range", "accept-ranges"],
			maxAge: 600,
		})(c, next);
	});
	app.route("/", adminRoutes); // backup/restore: off without ADMIN_TOKEN; streams, so before the body limit
	// Uploads stream into R2 and enforce their declared size themselves.
	app.use("*", async (c, next) =>
		STREAMED_UPLOAD_PATH.test(c.req.path)
			? next()
			: bodyLimit({
					maxSize: Number(c.env.MAX_BODY_BYTES) || DEFAULT_MAX_BODY_BYTES,
					onError: () => {
						throw new ApiError(413, "PAYLOAD_TOO_LARGE", "The request body is larger than this endpoint accepts.");
					},
				})(c, next),
	);

	// Liveness and readiness answer even when configuration is broken: /ready then names it.
	app.route("/", serviceRoutes);
	app.doc31("/openapi.json", OPENAPI_CONFIG);
	app.get("/docs", (c) => {
		const nonce = crypto.randomUUID().replaceAll("-", "");
		const doc = app.getOpenAPI31Document(OPENAPI_CONFIG) as unknown as Record<string, unknown>;
		c.header("content-security-policy", `default-src 'none'; style-src 'nonce-${nonce}'; frame-ancestors 'none'`);
		return c.html(renderDocs(doc, nonce));
	});
	documentReference(app);

	app.use("*", config(), database());
	app.route("/", jwksRoutes);
	app.route("/", devRoutes);
	app.route("/", authRoutes);
	app.route("/", userRoutes);
	app.route("/", friendRoutes);
	app.route("/", blockRoutes);
	app.route("/", deviceRoutes);
	app.route("/", keyRoutes);
	app.route("/", conversationRoutes);
	app.route("/", fileRoutes);
	app.route("/", realtimeRoutes);
	app.route("/", callRoutes);
	app.route("/", pushRoutes);
	app.route("/", internalRoutes);

	app.notFound(notFoundHandler(() => app.routes));
	app.onError(onError);
	return app;
}

export type App = ReturnType<typeof createApp>;
