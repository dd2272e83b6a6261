import type { SessionId, UserId } from "@secureconnect/protocol";
import { createMiddleware } from "hono/factory";
import { authenticate } from "../../auth/authenticate.ts";
import { ApiError } from "../../lib/api-error.ts";
import type { AuthedEnv } from "../../types.ts";

export interface Principal {
	userId: UserId;
	sessionId: SessionId;
}

export function bearerToken(header: string | undefined): string | undefined {
	const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header ?? "");
	return m?.[1];
}

/** Verifies the access token and, on every request, that its session is still live. */
export const requireAuth = () =>
	createMiddleware<AuthedEnv>(async (c, next) => {
		const token = bearerToken(c.req.header("authorization"));
		if (!token) throw new ApiError(401, "UNAUTHORIZED", "Send an access token: Authorization: Bearer <accessToken>.");
		const claims = await authenticate(c.var.config, c.var.db, token);
		c.set("auth", claims);
		c.set("log", c.var.log.child({ userId: claims.userId }));
		await next();
	});
