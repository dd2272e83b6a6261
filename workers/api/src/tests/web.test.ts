// The web app as static assets: its pages and files come from ASSETS with a
// strict CSP; api paths keep the JSON error envelope, whatever the method.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../index.ts";
import { appContentSecurityPolicy } from "../web/assets.ts";

describe("web app assets", () => {
	it("serves the app shell at / with a strict Content-Security-Policy", async () => {
		const res = await SELF.fetch("http://api.test/");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/html/);
		const html = await res.text();
		expect(html).toContain('<div id="app">');
		expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'self'");
		expect(csp).toContain("script-src 'self'");
		expect(csp).not.toContain("unsafe-inline");
		expect(csp).toContain("frame-ancestors 'none'");
		expect(csp).toMatch(/connect-src 'self' ws:\/\/api\.test/);
		expect(res.headers.get("x-request-id")).toBeTruthy();
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
	});

	it("answers client-side routes (emailed links) with the app shell", async () => {
		for (const path of ["/verify-email?token=abc", "/reset-password?token=abc", "/chats/cnv_abcdefghij"]) {
			const res = await SELF.fetch(`http://api.test${path}`);
			expect(res.status, path).toBe(200);
			expect(await res.text(), path).toContain('<div id="app">');
		}
	});

	it("serves the bundled script and styles, and a real 404 for a missing file", async () => {
		const html = await (await SELF.fetch("http://api.test/")).text();
		const script = /src="(\/app-[^"]+\.js)"/.exec(html)?.[1];
		const styles = /href="(\/styles-[^"]+\.css)"/.exec(html)?.[1];
		expect(script).toBeTruthy();
		const js = await SELF.fetch(`http://api.test${script}`);
		expect(js.status).toBe(200);
		expect(js.headers.get("content-type")).toMatch(/javascript/);
		await js.arrayBuffer();
		const css = await SELF.fetch(`http://api.test${styles}`);
		expect(css.status).toBe(200);
		await css.arrayBuffer();
		const missing = await SELF.fetch("http://api.test/missing-file.js");
		expect(missing.status).toBe(404);
		await missing.arrayBuffer();
	});

	it("keeps the JSON error envelope on api paths and for other methods", async () => {
		for (const [method, path] of [
			["GET", "/v1/nope"],
			["GET", "/v1"],
			["GET", "/dev/nope"],
			["GET", "/internal/nope"],
			["GET", "/.well-known/nope"],
			["POST", "/somewhere"],
		] as const) {
			const res = await SELF.fetch(`http://api.test${path}`, { method });
			expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
			expect(res.headers.get("content-type"), `${method} ${path}`).toMatch(/application\/json/);
			const body = (await res.json()) as { error: { code: string; requestId: string } };
			expect(body.error.requestId).toBeTruthy();
		}
		const health = await SELF.fetch("http://api.test/health");
		expect(await health.json()).toEqual({ status: "ok" });
	});

	it("lets the app open sockets to the api and the media nodes only", () => {
		const csp = appContentSecurityPolicy(
			{
				...env,
				PUBLIC_URL: "https://chat.example.com",
				MEDIA_NODE_URL: "https://media1.example.com:8443",
				MEDIA_NODE_ORIGINS: "wss://media2.example.com, https://media3.example.com",
			},
			"https://chat.example.com/chats",
		);
		const connect = /connect-src ([^;]+)/.exec(csp)?.[1]?.split(" ");
		expect(connect).toEqual([
			"'self'",
			"wss://chat.example.com",
			"wss://media1.example.com:8443",
			"wss://media2.example.com",
			"wss://media3.example.com",
		]);
		expect(csp).toContain("media-src 'self' blob:");
	});

	it("without the assets binding every path is the api's (JSON 404)", async () => {
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request("http://api.test/"), { ...env, ASSETS: undefined }, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(404);
		expect(((await res.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
	});
});
