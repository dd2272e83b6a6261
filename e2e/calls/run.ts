// `npm run test:calls`: calls through the real stack (api in wrangler dev,
// media node, coturn) with headless Chromium participants using the SDK's
// CallSession. Ends with "call e2e: N passed, N failed".
//
//   a  two participants see and hear each other (and mute reaches the other)
//   b  five participants each receive the other four; a sixth is refused (CALL_FULL)
//   c  a leaving participant disappears for the others
//   d  iceTransportPolicy "relay" through coturn: works with api-minted credentials, fails with wrong ones
//   e  the media node refuses call tokens with a wrong audience, expired, or signed by an unknown key
//   f  the media node hosting a call is killed mid-call: both participants continue on another node (failover.ts)
//   g  a media node that merely blips keeps its call: sessions resume on the same node (failover.ts)
//
// Screenshots and the stack's logs go to test-artifacts/calls/.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { ensureChromium } from "../../scripts/local/chromium.ts";
import { stopAll } from "../../scripts/local/processes.ts";
import { Api, type JoinInfo, type User } from "./api.ts";
import { launchBrowser, Participant, servePage } from "./browser.ts";
import { failover } from "./failover.ts";
import { captureChildOutput, type Stack, startStack } from "./stack.ts";
import { signCallToken, strangerKey, tryAdmission } from "./tokens.ts";
import type { PageStats } from "./types.ts";

const ROOT = join(import.meta.dirname, "../..");
const ARTIFACTS = join(ROOT, "test-artifacts/calls");
/** The media node's per-call limit: case b fills a call exactly, the sixth is refused. */
const MAX_PEERS_PER_CALL = 5;
const WATCHDOG_MS = 300_000;

const say = (line: string) => process.stdout.write(`[call e2e] ${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const results: { name: string; ok: boolean }[] = [];

async function test(name: string, body: () => Promise<void>): Promise<void> {
	const t0 = Date.now();
	try {
		await body();
		results.push({ name, ok: true });
		say(`ok    ${name} (${seconds(Date.now() - t0)})`);
	} catch (error) {
		results.push({ name, ok: false });
		say(`FAIL  ${name} (${seconds(Date.now() - t0)}): ${(error as Error).stack ?? String(error)}`);
	}
}

function assert(condition: unknown, message: string): asserts condition {
	if (!condition) throw new Error(message);
}

/** Polls `probe` until it returns something truthy; the error names what was awaited and the last value seen. */
async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | false | undefined>): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	let last: unknown;
	for (;;) {
		const value = await probe().catch((error: unknown) => {
			last = error;
			return undefined;
		});
		if (value) return value;
		if (Date.now() > deadline) {
			const detail = last instanceof Error ? ` (last error: ${last.message})` : "";
			throw new Error(`timed out after ${seconds(timeoutMs)} waiting for ${what}${detail}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 300));
	}
}

/** Decoded video and received audio from `peerId`. */
const hears = (stats: PageStats, peerId: string) => {
	const peer = stats.byPeer[peerId];
	return !!peer && peer.framesDecoded > 0 && peer.audioPacketsReceived > 0;
};

interface Ctx {
	stack: Stack;
	api: Api;
	users: Record<string, User>;
	pages: Record<string, Participant>;
}

/** Everyone in `names` joins `callId` through the api and then the media node. */
async function joinAll(ctx: Ctx, callId: string, names: string[], first?: { name: string; join: JoinInfo }) {
	await Promise.all(
		names.map(async (name) => {
			const user = ctx.users[name] as User;
			const info = first?.name === name ? first.join : await ctx.api.joinCall(user, callId);
			const result = await (ctx.pages[name] as Participant).join(info);
			assert(result.ok, `${name} could not join: ${JSON.stringify(result)}`);
		}),
	);
}

async function leaveAll(ctx: Ctx, callId: string, names: string[]): Promise<void> {
	await Promise.all(
		names.map(async (name) => {
			await (ctx.pages[name] as Participant).leave().catch(() => {});
			await ctx.api.leaveCall(ctx.users[name] as User, callId);
		}),
	);
}

const shot = (ctx: Ctx, name: string, file: string, videos = 0) =>
	(ctx.pages[name] as Participant).screenshot(join(ARTIFACTS, `${file}-${name.toLowerCase()}.png`), videos);

async function tokenCases(ctx: Ctx): Promise<void> {
	const { api, stack, users } = ctx;
	const alice = users.Alice as User;
	const conversation = await api.group(alice, [alice, users.Frank as User], "e: tokens");
	const { callId, join } = await api.startCall(alice, conversation);
	const apiKey = (JSON.parse(stack.secrets.JWT_SIGNING_KEYS) as [{ kid: string }])[0];
	const claims = { issuer: stack.issuer, userId: alice.id, callId };
	const refused = async (label: string, token: string, code: string) => {
		const admission = await tryAdmission(join.url, token);
		assert(
			!admission.admitted && admission.code === code && admission.closeCode === 4001,
			`${label}: expected ${code} and close 4001, got ${JSON.stringify(admission)}`,
		);
		say(`      ${label}: ${admission.code} "${admission.message}", close ${admission.closeCode}`);
	};
	try {
		await test("e  the api's own call token admits (control for the refusals below)", async () => {
			const admission = await tryAdmission(join.url, join.token);
			assert(admission.admitted, `refused: ${JSON.stringify(admission)}`);
			const forged = await tryAdmission(join.url, await signCallToken(apiKey, claims));
			assert(forged.admitted, `a token signed here with the api's key was refused: ${JSON.stringify(forged)}`);
		});
		await test("e  a token for another audience is refused", () =>
			signCallToken(apiKey, { ...claims, audience: "secureconnect-api" }).then((t) =>
				refused("wrong audience", t, "INVALID_TOKEN"),
			));
		await test("e  an expired token is refused", () =>
			signCallToken(apiKey, { ...claims, iat: -300, ttl: 100 }).then((t) => refused("expired", t, "TOKEN_EXPIRED")));
		await test("e  a token signed by an unknown key is refused", async () =>
			refused("unknown key", await signCallToken(await strangerKey(), claims), "INVALID_TOKEN"));
		await test("e  once the last one leaves, the call's still-valid token no longer opens it", async () => {
			await api.leaveCall(alice, callId);
			// The api tells the node after answering the leave.
			const admission = await until("the node to refuse the ended call", 10_000, async () => {
				const tried = await tryAdmission(join.url, join.token);
				return !tried.admitted && tried;
			});
			assert(
				admission.code === "NOT_FOUND" && admission.closeCode === 4010,
				`expected NOT_FOUND and close 4010, got ${JSON.stringify(admission)}`,
			);
			say(`      ended call: ${admission.code} "${admission.message}", close ${admission.closeCode}`);
		});
	} finally {
		await api.leaveCall(alice, callId);
	}
}

async function twoParticipants(ctx: Ctx): Promise<void> {
	const { api, users, pages } = ctx;
	const [alice, bob] = [users.Alice as User, users.Bob as User];
	const [A, B] = [pages.Alice as Participant, pages.Bob as Participant];
	const conversation = await api.group(alice, [alice, bob], "a: two");
	const ring = await api.ringing(bob);
	const { callId, join } = await api.startCall(alice, conversation);
	try {
		await test("a  two participants see and hear each other", async () => {
			await ring.waitFor(callId);
			await joinAll(ctx, callId, ["Alice", "Bob"], { name: "Alice", join });
			const [sa, sb] = await until(
				"video frames decoded and audio packets received on both sides",
				30_000,
				async () => {
					const both = await Promise.all([A.stats(), B.stats()]);
					return hears(both[0], bob.id) && hears(both[1], alice.id) && both;
				},
			);
			say(
				`      Alice ← Bob: ${JSON.stringify(sa.byPeer[bob.id])}; Bob ← Alice: ${JSON.stringify(sb.byPeer[alice.id])}`,
			);
			await Promise.all([shot(ctx, "Alice", "a-two", 1), shot(ctx, "Bob", "a-two", 1)]);
			await A.setMicrophoneMuted(true);
			await until("Bob to see Alice's microphone muted", 5_000, async () =>
				(await B.events()).includes(`muteChanged ${alice.id} mic true`),
			);
			await A.setMicrophoneMuted(false);
		});
	} finally {
		ring.close();
		await leaveAll(ctx, callId, ["Alice", "Bob"]);
	}
}

async function fiveParticipants(ctx: Ctx): Promise<void> {
	const { api, users, pages } = ctx;
	const five = ["Alice", "Bob", "Carol", "Dave", "Erin"];
	const alice = users.Alice as User;
	const conversation = await api.group(
		alice,
		[...five, "Frank"].map((n) => users[n] as User),
		"b: five",
	);
	const { callId, join } = await api.startCall(alice, conversation);
	let inCall = five;
	try {
		await test("b  five participants each receive the other four", async () => {
			await joinAll(ctx, callId, five, { name: "Alice", join });
			await until("every participant decoding video and receiving audio from the four others", 45_000, async () => {
				const stats = await Promise.all(five.map((n) => (pages[n] as Participant).stats()));
				return stats.every((s, i) => five.every((other, j) => i === j || hears(s, (users[other] as User).id)));
			});
			const frames = await Promise.all(five.map((n) => (pages[n] as Participant).stats()));
			say(
				`      frames decoded per receiver: ${five.map((n, i) => `${n} ${frames[i]?.video.framesDecoded}`).join(", ")}`,
			);
			await Promise.all(five.map((n) => shot(ctx, n, "b-five", 4)));
		});

		await test(`e  a sixth participant is refused with CALL_FULL (node limit ${MAX_PEERS_PER_CALL})`, async () => {
			const frank = users.Frank as User;
			const info = await api.joinCall(frank, callId);
			const result = await (pages.Frank as Participant).join(info);
			await api.leaveCall(frank, callId);
			assert(!result.ok && result.code === "CALL_FULL", `expected CALL_FULL, got ${JSON.stringify(result)}`);
			assert(/maximum of 5 participants/.test(result.message), `unclear message: ${result.message}`);
			say(`      Frank: ${result.code} "${result.message}"`);
			await shot(ctx, "Frank", "e-call-full");
		});

		await test("c  a leaving participant disappears for the others", async () => {
			const erin = users.Erin as User;
			await (pages.Erin as Participant).leave();
			await api.leaveCall(erin, callId);
			inCall = five.filter((n) => n !== "Erin");
			await until("Erin's tile and consumers to close on the four others", 10_000, async () => {
				const seen = await Promise.all(
					inCall.map(async (n) => {
						const page = pages[n] as Participant;
						const [tiles, peers, events] = await Promise.all([page.tiles(), page.remotePeers(), page.events()]);
						return (
							!tiles.includes(erin.id) && !peers.includes(erin.id) && events.includes(`participantLeft ${erin.id}`)
						);
					}),
				);
				return seen.every(Boolean);
			});
			const tiles = await (pages.Alice as Participant).tiles();
			assert(tiles.length === 3, `Alice should show 3 tiles, shows ${tiles.length}`);
			await shot(ctx, "Alice", "c-after-leave", 3);
		});
	} finally {
		await leaveAll(ctx, callId, inCall);
	}
}

async function relay(ctx: Ctx): Promise<void> {
	const { api, users, pages } = ctx;
	const [alice, bob, carol] = [users.Alice as User, users.Bob as User, users.Carol as User];
	const conversation = await api.group(alice, [alice, bob, carol], "d: relay");
	const { callId } = await api.startCall(alice, conversation);
	const names = ["Alice", "Bob", "Carol"];
	try {
		const creds = await Promise.all([alice, bob, carol].map((u) => api.turnCredentials(u)));
		const turnOnly = (c: (typeof creds)[number]) =>
			c.iceServers.filter((s) => [s.urls].flat().some((u) => u.startsWith("turn:")));
		for (const c of creds) assert(c.turn === "ok" && turnOnly(c).length === 1, `no TURN in ${JSON.stringify(c)}`);
		const wrong = turnOnly(creds[2] as (typeof creds)[number]).map((s) => ({
			...s,
			credential: "d3JvbmcgY3JlZGVudGlhbA==",
		}));
		const t0 = Date.now();
		const joined = await Promise.all(
			names.map(async (name, i) => {
				const info = await api.joinCall(users[name] as User, callId);
				const iceServers = name === "Carol" ? wrong : turnOnly(creds[i] as (typeof creds)[number]);
				return await (pages[name] as Participant).join({ ...info, iceServers, iceTransportPolicy: "relay" });
			}),
		);
		for (const [i, result] of joined.entries())
			assert(result.ok, `${names[i]} could not join: ${JSON.stringify(result)}`);

		await test("d  relay-only ICE through coturn works with api-minted TURN credentials", async () => {
			const [sa, sb] = await until("media between Alice and Bob over relayed paths", 30_000, async () => {
				const both = await Promise.all([(pages.Alice as Participant).stats(), (pages.Bob as Participant).stats()]);
				return hears(both[0], bob.id) && hears(both[1], alice.id) && both;
			});
			for (const [name, s] of [
				["Alice", sa],
				["Bob", sb],
			] as const) {
				assert(
					s.send?.candidateType === "relay" && s.recv?.candidateType === "relay",
					`${name}'s transports are not relayed: ${JSON.stringify({ send: s.send, recv: s.recv })}`,
				);
			}
			say(`      Alice send ${JSON.stringify(sa.send)}, recv ${JSON.stringify(sa.recv)}`);
			await shot(ctx, "Alice", "d-relay", 1);
		});

		await test("d  relay-only ICE with wrong TURN credentials gets no media", async () => {
			const waitMs = 8_000 - (Date.now() - t0);
			if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
			const [sc, sa] = await Promise.all([(pages.Carol as Participant).stats(), (pages.Alice as Participant).stats()]);
			const events = await (pages.Carol as Participant).events();
			assert(
				sc.video.framesDecoded === 0 && sc.audio.packetsReceived === 0,
				`Carol received media: ${JSON.stringify(sc)}`,
			);
			assert(
				sc.send?.state !== "connected" && sc.recv?.state !== "connected",
				`Carol connected: ${JSON.stringify(sc)}`,
			);
			assert(!hears(sa, carol.id), "Alice received Carol's media");
			const iceErrors = events.filter((e) => e.startsWith("iceError"));
			say(
				`      after ${seconds(Date.now() - t0)}: Carol send ${sc.send?.state}, recv ${sc.recv?.state}; ${iceErrors.length ? [...new Set(iceErrors)].join(", ") : "no ICE error events"}`,
			);
			await shot(ctx, "Carol", "d-wrong-credentials");
		});
	} finally {
		await leaveAll(ctx, callId, names);
	}
}

async function main(): Promise<void> {
	const t0 = Date.now();
	const watchdog = setTimeout(() => {
		say(`watchdog: still running after ${seconds(WATCHDOG_MS)}; stopping`);
		process.stdout.write("call e2e: 0 passed, 1 failed\n");
		void stopAll().finally(() => process.exit(1));
	}, WATCHDOG_MS);
	watchdog.unref();
	mkdirSync(ARTIFACTS, { recursive: true });
	const logPath = join(ARTIFACTS, "stack.log");
	captureChildOutput(logPath, ["api", "media", "coturn"]);
	ensureChromium(say);
	const dataDir = mkdtempSync(join(tmpdir(), "sc-calls-"));
	let stack: Stack | undefined;
	let context: BrowserContext | undefined;
	let server: Server | undefined;
	let browserReady: Promise<unknown> = Promise.resolve();
	try {
		const names = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"];
		// Chromium and the pages start while the stack does.
		const ready = (async () => {
			const page = await servePage();
			server = page.server;
			context = await launchBrowser(join(dataDir, "chromium"));
			const browser = context;
			return await Promise.all(names.map((n) => Participant.open(browser, page.url, n)));
		})();
		browserReady = ready;
		ready.catch(() => {});
		stack = await startStack({ dataDir, maxPeersPerCall: MAX_PEERS_PER_CALL });
		say(
			`stack up in ${seconds(Date.now() - t0)}: api ${stack.apiUrl}, media node ${stack.mediaUrl}, coturn :${stack.turnPort}; logs in ${logPath}`,
		);
		const api = new Api(stack.apiUrl);
		const runId = Date.now().toString(36);
		const [users, pages] = await Promise.all([Promise.all(names.map((n) => api.newUser(n, runId))), ready]);
		const ctx: Ctx = {
			stack,
			api,
			users: Object.fromEntries(names.map((n, i) => [n, users[i] as User])),
			pages: Object.fromEntries(names.map((n, i) => [n, pages[i] as Participant])),
		};
		say(`6 users and pages ready at ${seconds(Date.now() - t0)}`);
		await tokenCases(ctx);
		await twoParticipants(ctx);
		await fiveParticipants(ctx);
		await relay(ctx);
		await failover(ctx, { test, until, say });
	} catch (error) {
		results.push({ name: "setup", ok: false });
		say(`FAIL  setup: ${(error as Error).stack ?? String(error)}`);
	} finally {
		await browserReady.catch(() => {});
		await context?.close().catch(() => {});
		server?.close();
		await stack?.stop();
		await stopAll();
		rmSync(dataDir, { recursive: true, force: true });
	}
	const passed = results.filter((r) => r.ok).length;
	const failed = results.length - passed;
	say(`done in ${seconds(Date.now() - t0)}; screenshots and logs in ${ARTIFACTS}`);
	process.stdout.write(`call e2e: ${passed} passed, ${failed} failed\n`);
	process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

await main();
