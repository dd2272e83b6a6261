import type { Context } from "hono";

/** Cloudflare sets cf-connecting-ip at the edge and overwrites any client-sent value. */
export function clientIp(c: Context): string {
	return c.req.header("cf-connecting-ip") ?? "unknown";
}
