// Headless Chromium (Debian's, driven by playwright-core) with a fake camera
// and microphone, loading the test page (browser/page.ts bundled by esbuild)
// from a local HTTP server. One page per participant.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { build } from "esbuild";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { CHROMIUM, CHROMIUM_FLAGS } from "../../scripts/local/chromium.ts";
import type { E2eApi, JoinParams, JoinResult, PageStats, RejoinAnswer } from "./types.ts";

/** The shared flags plus the ones that keep several pages playing media in one headless run. */
const FLAGS = [
	"--headless",
	...CHROMIUM_FLAGS,
	"--autoplay-policy=no-user-gesture-required",
	"--disable-background-timer-throttling",
	"--disable-renderer-backgrounding",
	"--disable-backgrounding-occluded-windows",
];

/** Serves the page and its bundle; resolves with the page's URL. */
export async function servePage(): Promise<{ url: string; server: Server }> {
	const dir = join(import.meta.dirname, "browser");
	const bundle = await build({
		entryPoints: [join(dir, "page.ts")],
		bundle: true,
		format: "esm",
		platform: "browser",
		target: "chrome120",
		write: false,
		logLevel: "warning",
	});
	const js = bundle.outputFiles[0]?.contents ?? new Uint8Array();
	const html = readFileSync(join(dir, "index.html"));
	const server = createServer((req, res) => {
		if (req.url === "/page.js") {
			res.writeHead(200, { "content-type": "text/javascript" }).end(js);
		} else if (req.url === "/" || req.url?.startsWith("/?")) {
			res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
		} else {
			res.writeHead(404).end();
		}
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

export async function launchBrowser(userDataDir: string): Promise<BrowserContext> {
	return await chromium.launchPersistentContext(userDataDir, {
		executablePath: CHROMIUM,
		headless: true,
		args: FLAGS,
		viewport: { width: 640, height: 420 },
		permissions: ["camera", "microphone"],
	});
}

/** The page's global (functions passed to page.evaluate run in the page, so they name it inline). */
type PageGlobal = { e2e: E2eApi };

/** A participant: one page running one CallSession. */
export class Participant {
	readonly name: string;
	readonly page: Page;
	userId = "";
	#rejoin: (() => Promise<RejoinAnswer>) | undefined;
	#exposed = false;

	constructor(name: string, page: Page) {
		this.name = name;
		this.page = page;
	}

	static async open(context: BrowserContext, url: string, name: string): Promise<Participant> {
		const page = await context.newPage();
		const errors: string[] = [];
		page.on("pageerror", (error) => errors.push(error.message));
		await page.goto(url);
		await page
			.waitForFunction(() => "e2e" in globalThis, undefined, { timeout: 10_000 })
			.catch(() => {
				throw new Error(`test page did not load: ${errors.join("; ") || "no e2e object"}`);
			});
		return new Participant(name, page);
	}

	join(params: Omit<JoinParams, "displayName">): Promise<JoinResult> {
		return this.page.evaluate((p) => (globalThis as unknown as PageGlobal).e2e.join(p), {
			...params,
			displayName: this.name,
		});
	}

	/** What the page's session calls to join again (join with `rejoin: true`); the page reaches it as `e2eRejoin()`. */
	async onRejoin(rejoin: () => Promise<RejoinAnswer>): Promise<void> {
		this.#rejoin = rejoin;
		if (this.#exposed) return;
		this.#exposed = true;
		await this.page.exposeFunction("e2eRejoin", () => {
			if (!this.#rejoin) throw new Error("no rejoin handler");
			return this.#rejoin();
		});
	}

	url(): Promise<string | undefined> {
		return this.page.evaluate(() => (globalThis as unknown as PageGlobal).e2e.url());
	}

	stats(): Promise<PageStats> {
		return this.page.evaluate(() => (globalThis as unknown as PageGlobal).e2e.stats());
	}

	leave(): Promise<void> {
		return this.page.evaluate(() => (globalThis as unknown as PageGlobal).e2e.leave());
	}

	tiles(): Promise<string[]> {
		return this.page.evaluate(() => (globalThis as unknown as PageGlobal).e2e.tiles());
	}

	remotePeers(): Promise<string[]> {
		return this.page.evaluate(() => (globalThis as unknown as PageGlobal).e2e.remotePeers());
	}

	events(): Promise<string[]> {
		return this.page.evaluate(() => (globalThis as unknown as PageGlobal).e2e.events());
	}

	setMicrophoneMuted(muted: boolean): Promise<void> {
		return this.page.evaluate((m) => (globalThis as unknown as PageGlobal).e2e.setMicrophoneMuted(m), muted);
	}

	/** A screenshot once `videos` remote videos show frames (or after 5 s, whatever they show). */
	async screenshot(path: string, videos: number): Promise<void> {
		await this.page
			.waitForFunction((n) => (globalThis as unknown as PageGlobal).e2e.playingVideos() >= n, videos, {
				timeout: 5_000,
			})
			.catch(() => {});
		await this.page.screenshot({ path });
	}
}
