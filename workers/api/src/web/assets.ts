// The web app (web/, built into web/dist) served as Workers Static Assets.
// wrangler.toml sets `run_worker_first = true`, so every request reaches the
// Worker first: API paths always stay with the api (and its JSON error
// envelope); other GET/HEAD requests are answered from the ASSETS binding,
// with the app's index.html for client-side routes such as /verify-email.
import { createMiddleware } from "hono/factory";
import type { Env } from "../env.ts";
import type { AppEnv } from "../types.ts";

/** A last path segment with an extension names a file: a miss is a real 404, not the app. */
const FILE_PATH = /\/[^/]*\.[A-Za-z0-9]+$/;

/**
 * First path segments the api owns (v1, health, ready, docs, openapi.json,
 * .well-known, dev, internal, admin…), taken from its routes, so a new api
 * area never falls through to the app: nothing under them is answered with a file.
 */
export function apiSegments(routes: ReadonlyArray<{ path: string }>): Set<string> {
	const segments = new Set(["v1"]);
	for (const { path } of routes) {
		const first = path.split("/")[1];
		if (first && !first.includes("*") && !first.startsWith(":")) segments.add(first);
	}
	return segments;
}

const wsOrigin = (url: string): string | undefined => {
	try {
		const u = new URL(url);
		return `${u.protocol === "https:" || u.protocol === "wss:" ? "wss" : "ws"}://${u.host}`;
	} catch {
		return undefined;
	}
};

/**
 * The app's Content-Security-Policy: only its own scripts and styles, no
 * inline code; sockets to the api and to the media nodes (MEDIA_NODE_URL and
 * the comma-separated MEDIA_NODE_ORIGINS); decrypted attachments as blob: URLs.
 */
export function appContentSecurityPolicy(env: Env, requestUrl: string): string {
	const connect = new Set(["'self'"]);
	for (const url of [requestUrl, env.PUBLIC_URL, env.MEDIA_NODE_URL, ...(env.MEDIA_NODE_ORIGINS ?? "").split(",")]) {
		const origin = url?.trim() ? wsOrigin(url.trim()) : undefined;
		if (origin) connect.add(origin);
	}
	return [
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' blob:",
		"media-src 'self' blob:",
		`connect-src ${[...connect].join(" ")}`,
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	].join("; ");
}

async function fromAssets(assets: Fetcher, request: Request): Promise<Response> {
	const res = await assets.fetch(request);
	if (res.status !== 404 || FILE_PATH.test(new URL(request.url).pathname)) return res;
	// A client-side route: the app's shell decides what to show.
	return assets.fetch(new Request(new URL("/", request.url), { method: request.method, headers: request.headers }));
}

export const webApp = (routes: () => ReadonlyArray<{ path: string }>) => {
	let api: Set<string> | undefined;
	return createMiddleware<AppEnv>(async (c, next) => {
		const assets = c.env.ASSETS;
		if (!assets || (c.req.method !== "GET" && c.req.method !== "HEAD")) return next();
		api ??= apiSegments(routes());
		if (api.has(c.req.path.split("/")[1] ?? "")) return next();
		const res = await fromAssets(assets, c.req.raw);
		const headers = new Headers(res.headers);
		headers.set("content-security-policy", appContentSecurityPolicy(c.env, c.req.url));
		headers.set("x-content-type-options", "nosniff");
		headers.set("referrer-policy", "no-referrer");
		headers.set("x-frame-options", "DENY");
		headers.set("permissions-policy", "camera=(self), microphone=(self), display-capture=(self)");
		headers.set("cross-origin-opener-policy", "same-origin");
		if (new URL(c.req.url).protocol === "https:") {
			headers.set("strict-transport-security", "max-age=63072000; includeSubDomains");
		}
		if (headers.get("content-type")?.startsWith("text/html")) headers.set("cache-control", "no-cache");
		return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
	});
};
