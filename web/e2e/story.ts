import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { buildWeb } from "../../scripts/build-web.ts";
import { CHROMIUM, CHROMIUM_FLAGS, ensureChromium } from "../../scripts/local/chromium.ts";
import { startLocalDatabase } from "../../scripts/local/database.ts";
import { freePort } from "../../scripts/local/ports.ts";
import { start, stopAll, waitForHttp } from "../../scripts/local/processes.ts";
import { ensureDevVars } from "../../scripts/local/secrets.ts";
import { startWranglerDev } from "../../scripts/local/wrangler.ts";

const ROOT = join(import.meta.dirname, "../..");
const ARTIFACTS = join(ROOT, "test-artifacts/web-e2e");
const SCREENSHOTS = join(ROOT, "docs/screenshots");
const UPDATE_SCREENSHOTS = process.argv.includes("--update-screenshots");
const STARTUP_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 60_000;
const OVERALL_TIMEOUT_MS = 10 * 60_000;

const log = (msg: string) => process.stdout.write(`[e2e] ${msg}\n`);

// ------------------------------------------------------------ setup

interface Stack {
	apiUrl: string;
	mediaUrl: string;
	close(): Promise<void>;
}

async function startStack(): Promise<Stack> {
	const vars = ensureDevVars(join(ROOT, ".dev.vars"));
	const [apiPort, mediaPort] = [await freePort(), await freePort()];
	const apiUrl = `http://127.0.0.1:${apiPort}`;
	const mediaUrl = `http://127.0.0.1:${mediaPort}`;
	const state = mkdtempSync(join(tmpdir(), "secureconnect-e2e-"));
	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	start("media", process.execPath, [join(ROOT, "media-node/src/main.ts")], {
		env: {
			...process.env,
			MEDIA_NODE_HOST: "127.0.0.1",
			MEDIA_NODE_PORT: String(mediaPort),
			MEDIA_NODE_ID: `e2e-${process.pid}`,
			MEDIA_NODE_SECRET: vars.get("MEDIA_NODE_SECRET"),
			API_URL: apiUrl,
			MEDIA_WORKERS: "1",
			// Away from `npm run dev`'s ports: any free port of this range.
			MEDIA_RTC_PORT: "0",
			MEDIA_RTC_MIN_PORT: "51000",
			MEDIA_RTC_MAX_PORT: "51999",
			LOG_LEVEL: "warn",
		},
	});
	startWranglerDev({
		root: ROOT,
		port: apiPort,
		persistTo: join(state, "wrangler"),
		vars: {
			DATABASE_URL: db.databaseUrl,
			DB_WS_PROXY: db.wsProxy,
			MEDIA_NODE_URL: mediaUrl,
			PUBLIC_URL: apiUrl,
			LOG_LEVEL: "warn",
		},
	});
	const close = async () => {
		await stopAll();
		await db.close();
		rmSync(state, { recursive: true, force: true });
	};
	const [apiUp, mediaUp] = await Promise.all([
		waitForHttp(`${apiUrl}/health`, STARTUP_TIMEOUT_MS),
		waitForHttp(`${mediaUrl}/health`, STARTUP_TIMEOUT_MS),
	]);
	if (!apiUp || !mediaUp) {
		await close();
		throw new Error(`stack did not start: api ${apiUp ? "up" : "down"}, media node ${mediaUp ? "up" : "down"}`);
	}
	return { apiUrl, mediaUrl, close };
}

// ------------------------------------------------------------ people

interface Person {
	name: string;
	handle: string;
	email: string;
	password: string;
	context: BrowserContext;
	page: Page;
	problems: string[];
}

async function openBrowser(name: string, viewport: { width: number; height: number }): Promise<Person> {
	const suffix = randomBytes(4).toString("hex");
	const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), `e2e-${name}-`)), {
		executablePath: CHROMIUM,
		headless: true,
		args: CHROMIUM_FLAGS,
		viewport,
		acceptDownloads: true,
	});
	const page = context.pages()[0] ?? (await context.newPage());
	page.setDefaultTimeout(20_000);
	const problems: string[] = [];
	page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
	page.on("console", (message) => {
		if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) {
			problems.push(`CSP: ${message.text()}`);
		}
	});
	return {
		name,
		handle: `${name.toLowerCase()}_${suffix}`,
		email: `${name.toLowerCase()}.${suffix}@example.test`,
		password: "correct horse battery staple 42",
		context,
		page,
		problems,
	};
}

// ------------------------------------------------------------ steps

interface Result {
	name: string;
	ok: boolean;
	ms: number;
	error?: string;
}
const results: Result[] = [];
let blocked = false;
let shots = 0;

async function step(name: string, body: () => Promise<void>, { always = false } = {}): Promise<void> {
	if (blocked && !always) {
		results.push({ name, ok: false, ms: 0, error: "not run: an earlier step failed" });
		log(`SKIP ${name} (an earlier step failed)`);
		return;
	}
	const started = performance.now();
	try {
		await Promise.race([
			body(),
			new Promise((_, reject) =>
				setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS),
			),
		]);
		const ms = Math.round(performance.now() - started);
		results.push({ name, ok: true, ms });
		log(`ok   ${name} (${ms} ms)`);
	} catch (error) {
		const ms = Math.round(performance.now() - started);
		const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
		results.push({ name, ok: false, ms, error: message });
		log(`FAIL ${name} (${ms} ms)\n${message}`);
		blocked = true;
	}
}

async function shot(person: Person, label: string): Promise<string> {
	const file = join(ARTIFACTS, `${String(++shots).padStart(2, "0")}-${person.name.toLowerCase()}-${label}.png`);
	await person.page.screenshot({ path: file });
	return file;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
}

/** A link of the app's main navigation. */
const nav = (p: Person, name: string | RegExp) =>
	p.page.getByRole("navigation", { name: "Main" }).getByRole("link", { name });

/** The open conversation's message log. */
const messages = (p: Person) => p.page.getByRole("log", { name: "Messages" });

function expect(condition: unknown, message: string): asserts condition {
	if (!condition) throw new Error(message);
}

// ------------------------------------------------------------ the story

async function story(stack: Stack, alice: Person, bob: Person): Promise<void> {
	const { apiUrl } = stack;
	const people = [alice, bob];
	let conversationShot = "";
	let callShot = "";
	const fileBody = Buffer.concat([Buffer.from("SecureConnect e2e attachment\n"), randomBytes(256 * 1024)]);

	await step("the Worker serves the app with a strict CSP; api paths keep their JSON errors", async () => {
		const home = await fetch(`${apiUrl}/`);
		expect(home.ok && (home.headers.get("content-type") ?? "").startsWith("text/html"), "GET / is not the app");
		const csp = home.headers.get("content-security-policy") ?? "";
		expect(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), `weak CSP: ${csp}`);
		expect(csp.includes(stack.mediaUrl.replace("http", "ws")), `CSP lacks the media node: ${csp}`);
		const route = await fetch(`${apiUrl}/chats/anything`);
		expect((await route.text()).includes('<div id="app">'), "client-side route is not the app shell");
		const api = await fetch(`${apiUrl}/v1/nope`);
		const body = (await api.json()) as { error?: { code: string } };
		expect(api.status === 404 && body.error?.code === "NOT_FOUND", "api 404 lost its JSON envelope");
	});

	await step("Alice and Bob sign up", async () => {
		for (const p of people) {
			await p.page.goto(`${apiUrl}/`);
			await p.page.getByRole("link", { name: "Create an account" }).click();
			await p.page.getByLabel("Your name").fill(p.name === "Alice" ? "Alice Martin" : "Bob Okafor");
			await p.page.getByLabel("Handle").fill(p.handle);
			await p.page.getByLabel("Email").fill(p.email);
			await p.page.getByLabel("Password").fill(p.password);
			await p.page.getByRole("button", { name: "Create account" }).click();
			await p.page.getByRole("heading", { name: "Check your email" }).waitFor();
			await shot(p, "signed-up");
		}
	});

	await step("both confirm their email with the link from the dev mailbox", async () => {
		for (const p of people) {
			const link = await until(`${p.name}'s verification email`, async () => {
				const res = await fetch(`${apiUrl}/dev/mailbox?to=${encodeURIComponent(p.email)}`);
				const { emails } = (await res.json()) as { emails: Array<{ template: string; text: string }> };
				const text = emails.find((e) => e.template === "verify_email")?.text ?? "";
				return /(https?:\/\/\S+\/verify-email\?token=\S+)/.exec(text)?.[1];
			});
			await p.page.goto(link);
			await p.page.getByText("Your email address is confirmed.").waitFor();
			await shot(p, "email-confirmed");
		}
	});

	await step("both sign in: a new device with its own MLS keys", async () => {
		for (const p of people) {
			await p.page.getByRole("link", { name: "Sign in" }).click();
			await p.page.getByLabel("Email").fill(p.email);
			await p.page.getByLabel("Password").fill(p.password);
			await p.page.getByRole("button", { name: "Sign in" }).click();
			await p.page.waitForURL(/\/chats$/);
			await nav(p, "People").waitFor();
			await shot(p, "signed-in");
		}
	});

	await step("Alice finds Bob by his handle and asks to be friends", async () => {
		const page = alice.page;
		await nav(alice, "People").click();
		await page.getByLabel("Handle").fill(bob.handle);
		await page.getByRole("button", { name: "Find", exact: true }).click();
		await page.getByRole("button", { name: "Add Bob Okafor as a friend" }).click();
		await page.getByText("Request sent").first().waitFor();
		await shot(alice, "friend-request-sent");
	});

	await step("Bob accepts the friend request", async () => {
		const page = bob.page;
		await nav(bob, "People").click();
		await page.getByRole("button", { name: "Accept Alice Martin's friend request" }).click();
		await page.getByRole("button", { name: "Message Alice Martin" }).waitFor();
		await shot(bob, "friends");
	});

	await step("Alice starts an end-to-end encrypted conversation with Bob", async () => {
		const page = alice.page;
		// Bob's acceptance reached Alice's user channel: he is in her Friends list without a reload.
		const friends = page.getByRole("region", { name: "Friends" });
		await friends.getByRole("button", { name: "Message Bob Okafor" }).click();
		await page.waitForURL(/\/chats\/cnv_/);
		await page.getByRole("heading", { name: "Bob Okafor" }).waitFor();
		await page.getByText("End-to-end encrypted", { exact: false }).waitFor();
	});

	await step("Alice's message reaches Bob decrypted, counted as unread until he opens it", async () => {
		await alice.page.getByLabel("Message", { exact: true }).fill("Hi Bob! This message is end-to-end encrypted.");
		await alice.page.keyboard.press("Enter");
		await messages(alice).getByText("Sent", { exact: true }).waitFor();
		const page = bob.page;
		await nav(bob, /^Conversations/).click();
		const item = page.getByRole("link", { name: /Alice Martin.*1 unread/ });
		await item.waitFor();
		await shot(bob, "unread");
		await item.click();
		await messages(bob).getByText("Hi Bob! This message is end-to-end encrypted.").waitFor();
		await shot(bob, "conversation");
	});

	await step("Bob types and replies; Alice sees him typing, the reply and her message seen", async () => {
		const composer = bob.page.getByLabel("Message", { exact: true });
		await composer.pressSequentially("Hello Alice", { delay: 40 });
		await alice.page.getByText("Bob Okafor is typing…").waitFor();
		await shot(alice, "typing");
		await composer.pressSequentially(", got it. Talk soon!", { delay: 10 });
		await composer.press("Enter");
		await messages(alice).getByText("Hello Alice, got it. Talk soon!").waitFor();
		await messages(alice).getByText("Seen by Bob Okafor").waitFor();
	});

	await step("Alice sends an encrypted file with upload progress; Bob downloads and decrypts it", async () => {
		// Record every upload progress text the page shows (the upload of a small file is quick).
		await alice.page.evaluate(`(() => {
			window.uploadTexts = [];
			new MutationObserver(() => {
				const m = /Uploading [^\\n]+: \\d+%/.exec(document.body.innerText);
				if (m) window.uploadTexts.push(m[0]);
			}).observe(document.body, { subtree: true, childList: true, characterData: true });
		})()`);
		await alice.page
			.getByLabel("Attach a file")
			.setInputFiles({ name: "plans.bin", mimeType: "application/octet-stream", buffer: fileBody });
		await messages(alice).getByRole("button", { name: "Download plans.bin" }).waitFor();
		const progress = (await alice.page.evaluate("window.uploadTexts")) as string[];
		expect(progress.length > 0, "no upload progress was shown");
		const button = messages(bob).getByRole("button", { name: "Download plans.bin" });
		await button.waitFor();
		const [download] = await Promise.all([bob.page.waitForEvent("download"), button.click()]);
		const saved = join(ARTIFACTS, "downloaded-plans.bin");
		await download.saveAs(saved);
		expect(readFileSync(saved).equals(fileBody), "the downloaded file differs from the one sent");
		await messages(bob).getByText("Decrypted.").waitFor();
		await shot(bob, "file-downloaded");
		await alice.page.getByLabel("Message", { exact: true }).fill("Sent you the plans. Call in a minute?");
		await alice.page.keyboard.press("Enter");
		await messages(bob).getByText("call in a minute?").waitFor();
		conversationShot = await shot(alice, "conversation");
	});

	await step("a 9 MiB file goes up in parts (multipart upload) and comes back intact", async () => {
		const big = randomBytes(9 * 1024 * 1024);
		await alice.page
			.getByLabel("Attach a file")
			.setInputFiles({ name: "video.raw", mimeType: "application/octet-stream", buffer: big });
		const button = messages(bob).getByRole("button", { name: "Download video.raw" });
		await button.waitFor({ timeout: 45_000 });
		const [download] = await Promise.all([bob.page.waitForEvent("download"), button.click()]);
		const saved = join(ARTIFACTS, "downloaded-video.raw");
		await download.saveAs(saved);
		expect(readFileSync(saved).equals(big), "the large file came back different");
		rmSync(saved);
	});

	const callStats = (p: Person) =>
		p.page.evaluate(async () => {
			const stats = (globalThis as unknown as { secureConnectCallStats?: () => Promise<unknown> })
				.secureConnectCallStats;
			return (stats ? await stats() : null) as { framesDecoded: number; packetsReceived: number } | null;
		});

	await step("Alice starts a video call, Bob answers, each decodes the other's video", async () => {
		await alice.page.getByRole("button", { name: "Video call" }).click();
		await alice.page.getByRole("dialog", { name: "Bob Okafor" }).waitFor();
		const ring = bob.page.getByRole("alertdialog", { name: "Alice Martin is calling" });
		await ring.waitFor();
		await shot(bob, "incoming-call");
		await ring.getByRole("button", { name: "Answer" }).click();
		for (const p of people) {
			const other = p === alice ? "Bob Okafor" : "Alice Martin";
			await p.page.getByText(`In call with ${other}`).waitFor();
			const stats = await until(`${p.name} decoding video`, async () => {
				const s = await callStats(p);
				return s && s.framesDecoded > 0 ? s : undefined;
			});
			log(`${p.name}: inbound video framesDecoded=${stats.framesDecoded} packets=${stats.packetsReceived}`);
		}
		await until("video on screen", async () =>
			alice.page.evaluate(
				"Array.from(document.querySelectorAll('.tile:not(.local) video')).some((v) => v.videoWidth > 0)",
			),
		);
		callShot = await shot(alice, "call");
		await shot(bob, "call");
	});

	await step("mute and camera-off reach the other side", async () => {
		const tile = bob.page.locator("figure.tile:not(.local)").first();
		await alice.page.getByRole("button", { name: "Mute" }).click();
		await tile.getByText("(muted)").waitFor();
		await alice.page.getByRole("button", { name: "Camera off" }).click();
		await tile.getByText("(camera off)").waitFor();
		await shot(bob, "alice-muted");
		await alice.page.getByRole("button", { name: "Mute" }).click();
		await alice.page.getByRole("button", { name: "Camera off" }).click();
		await until("Alice unmuted on Bob's side", async () => !(await tile.textContent())?.includes("(muted)"));
	});

	await step("hanging up ends the call on both sides", async () => {
		await alice.page.getByRole("button", { name: "Hang up" }).click();
		for (const p of people) {
			await p.page.getByRole("dialog").waitFor({ state: "detached" });
			expect((await callStats(p)) === null, `${p.name} still has a call`);
		}
		await bob.page.getByText("Alice Martin left the call.").first().waitFor();
		await shot(bob, "call-ended");
	});

	await step("Devices and sessions list this browser, and Alice signs out", async () => {
		const page = alice.page;
		await nav(alice, "Devices").click();
		await page.getByText("This session").waitFor();
		await page.getByText("This device").waitFor();
		await shot(alice, "devices");
		await page.getByRole("button", { name: "Sign out" }).first().click();
		await page.getByRole("heading", { name: "Sign in" }).waitFor();
	});

	await step(
		"no Content-Security-Policy violations or page errors",
		async () => {
			const problems = people.flatMap((p) => p.problems.map((text) => `${p.name}: ${text}`));
			expect(problems.length === 0, problems.join("\n"));
		},
		{ always: true },
	);

	if (UPDATE_SCREENSHOTS && conversationShot && callShot) {
		mkdirSync(SCREENSHOTS, { recursive: true });
		copyFileSync(conversationShot, join(SCREENSHOTS, "conversation.png"));
		copyFileSync(callShot, join(SCREENSHOTS, "call.png"));
		log(`README screenshots updated in ${SCREENSHOTS}`);
	}
}

async function main(): Promise<number> {
	const started = performance.now();
	rmSync(ARTIFACTS, { recursive: true, force: true });
	mkdirSync(ARTIFACTS, { recursive: true });
	const overall = setTimeout(() => {
		log(`gave up after ${OVERALL_TIMEOUT_MS / 60_000} minutes`);
		void stopAll().finally(() => process.exit(1));
	}, OVERALL_TIMEOUT_MS);
	overall.unref();

	let stack: Stack | undefined;
	const browsers: Person[] = [];
	try {
		ensureChromium(log);
		await buildWeb();
		stack = await startStack();
		log(`stack up in ${Math.round(performance.now() - started)} ms: api ${stack.apiUrl}, media node ${stack.mediaUrl}`);
		// Alice on a laptop-sized window, Bob on a phone-sized one.
		browsers.push(await openBrowser("Alice", { width: 1280, height: 800 }));
		browsers.push(await openBrowser("Bob", { width: 390, height: 844 }));
		await story(stack, browsers[0] as Person, browsers[1] as Person);
	} catch (error) {
		results.push({ name: "set up the stack and browsers", ok: false, ms: 0, error: String(error) });
		log(`FAIL setup: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
	} finally {
		for (const p of browsers) await p.context.close().catch(() => {});
		await stack?.close().catch(() => {});
	}
	const passed = results.filter((r) => r.ok).length;
	const failed = results.length - passed;
	log(`screenshots in ${ARTIFACTS}; took ${Math.round((performance.now() - started) / 1000)} s`);
	process.stdout.write(`web e2e: ${passed} passed, ${failed} failed\n`);
	return failed === 0 && passed > 0 ? 0 : 1;
}

process.exit(await main());
