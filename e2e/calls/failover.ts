// Case f (issue #11, chaos): the media node hosting a call is killed with
// SIGKILL mid-call. A second node (its own ports, id and region) is
// registered; the participants' sessions (CallSession with `rejoin`) fail to
// reach the dead node, ask the api again, the api moves the call to the
// survivor (and says so on the user channels), and both participants decode
// each other's video there again, within FAILOVER_BOUND_MS.
//
// Case g: a node that merely blips keeps its call. The participants reach the
// node's signaling port through a TCP proxy (a flaky link), which drops every
// connection and refuses new ones for BLIP_MS; the sessions (without `rejoin`)
// get back onto the same node within its reconnect grace, which kept their
// transports and producers (`resumed`), and video flows again.
import { connect, createServer, type Server, type Socket } from "node:net";
import { join as joinPath } from "node:path";
import { APP_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX } from "../../protocol/src/realtime.ts";
import type { Api, JoinInfo, User } from "./api.ts";
import type { Participant } from "./browser.ts";
import { MEDIA_HEARTBEAT_MS, MEDIA_NODE_STALE_SECONDS, type MediaNode, type Stack } from "./stack.ts";
import type { PageStats } from "./types.ts";

/**
 * Upper bound from the kill to video decoding again on both sides: the api
 * calls a node dead MEDIA_NODE_STALE_SECONDS after its last heartbeat (≤ one
 * heartbeat before the kill), sessions try the same node for 3 s first, then
 * rejoin with back-off (≤ 4 s between tries), then ICE/DTLS and a key frame.
 */
export const FAILOVER_BOUND_MS = 30_000;
const ARTIFACTS = joinPath(import.meta.dirname, "../../test-artifacts/calls");
/** How long the blip's link refuses connections: less than the SDK's same-node window (3 s). */
const BLIP_MS = 1_500;

export interface FailoverCtx {
	stack: Stack;
	api: Api;
	users: Record<string, User>;
	pages: Record<string, Participant>;
}

export interface CaseTools {
	test(name: string, body: () => Promise<void>): Promise<void>;
	until<T>(what: string, timeoutMs: number, probe: () => Promise<T | false | undefined>): Promise<T>;
	say(line: string): void;
}

function assert(condition: unknown, message: string): asserts condition {
	if (!condition) throw new Error(message);
}

const port = (url: string | undefined) => (url ? new URL(url).port : "");
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const framesFrom = (stats: PageStats, peerId: string) => stats.byPeer[peerId]?.framesDecoded ?? 0;

/** Heartbeats the api has accepted from a node (its /metrics). */
async function heartbeatsAccepted(node: MediaNode): Promise<number> {
	const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
	return Number(/^secureconnect_media_heartbeats_total\s+(\d+)/m.exec(text)?.[1] ?? 0);
}

/** The `call` frames a user's channel (GET /v1/ws) carries. */
async function callFrames(
	apiUrl: string,
	user: User,
): Promise<{ frames: Array<Record<string, unknown>>; close(): void }> {
	const ws = new WebSocket(`${apiUrl.replace(/^http/, "ws")}/v1/ws`, [
		APP_SUBPROTOCOL,
		`${BEARER_SUBPROTOCOL_PREFIX}${user.accessToken}`,
	]);
	const frames: Array<Record<string, unknown>> = [];
	ws.addEventListener("message", (event) => {
		const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
		if (frame.type === "call") frames.push(frame);
	});
	await new Promise<void>((resolve, reject) => {
		ws.addEventListener("open", () => resolve(), { once: true });
		ws.addEventListener("error", () => reject(new Error("user channel did not open")), { once: true });
	});
	return { frames, close: () => ws.close() };
}

/** A TCP link to 127.0.0.1:`targetPort` that can drop its connections and refuse new ones for a while. */
async function flakyLink(targetPort: number): Promise<{ port: number; blip(ms: number): void; close(): void }> {
	const open = new Set<Socket>();
	let downUntil = 0;
	const server: Server = createServer((client) => {
		if (Date.now() < downUntil) {
			client.destroy();
			return;
		}
		const upstream = connect(targetPort, "127.0.0.1");
		for (const socket of [client, upstream]) {
			open.add(socket);
			socket.on("close", () => open.delete(socket));
			socket.on("error", () => {});
		}
		client.pipe(upstream).pipe(client);
		client.on("close", () => upstream.destroy());
		upstream.on("close", () => client.destroy());
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		port: (server.address() as { port: number }).port,
		blip(ms) {
			downUntil = Date.now() + ms;
			for (const socket of open) socket.destroy();
		},
		close() {
			for (const socket of open) socket.destroy();
			server.close();
		},
	};
}

export async function failover(ctx: FailoverCtx, tools: CaseTools): Promise<void> {
	await killed(ctx, tools);
	await blip(ctx, tools);
}

/**
 * Alice (with the join the call's start gave her) and Bob (joining now) enter
 * the call through `options`; resolves with their pages once each decodes the
 * other's video.
 */
async function joinBoth(
	ctx: FailoverCtx,
	until: CaseTools["until"],
	callId: string,
	aliceJoin: JoinInfo,
	what: string,
	options: (info: JoinInfo) => Parameters<Participant["join"]>[0],
): Promise<[Participant, Participant]> {
	const { api, users, pages } = ctx;
	const names = ["Alice", "Bob"] as const;
	const joined = await Promise.all(
		names.map(async (name) => {
			const info = name === "Alice" ? aliceJoin : await api.joinCall(users[name] as User, callId);
			return await (pages[name] as Participant).join(options(info));
		}),
	);
	for (const [i, result] of joined.entries())
		assert(result.ok, `${names[i]} could not join: ${JSON.stringify(result)}`);
	const [A, B] = [pages.Alice as Participant, pages.Bob as Participant];
	const [alice, bob] = [users.Alice as User, users.Bob as User];
	await until(what, 30_000, async () => {
		const [sa, sb] = await Promise.all([A.stats(), B.stats()]);
		return framesFrom(sa, bob.id) > 0 && framesFrom(sb, alice.id) > 0;
	});
	return [A, B];
}

/** Both pages hang up and both users leave the call through the api. */
async function leaveBoth({ api, users, pages }: FailoverCtx, callId: string): Promise<void> {
	await Promise.all(
		(["Alice", "Bob"] as const).map(async (name) => {
			await (pages[name] as Participant).leave().catch(() => {});
			await api.leaveCall(users[name] as User, callId);
		}),
	);
}

async function killed(ctx: FailoverCtx, { test, until, say }: CaseTools): Promise<void> {
	const { api, stack, users, pages } = ctx;
	const [alice, bob] = [users.Alice as User, users.Bob as User];
	const names = ["Alice", "Bob"] as const;
	const second = await stack.startMediaNode("e2e-media-2", "local-b");
	const nodes = [stack.media, second];
	await until("both media nodes registered with the api", 15_000, async () => {
		const counts = await Promise.all(nodes.map(heartbeatsAccepted));
		return counts.every((n) => n > 0);
	});
	const conversation = await api.group(alice, [alice, bob], "f: failover");
	const { callId, join } = await api.startCall(alice, conversation);
	const channel = await callFrames(api.base, bob);
	const rejoin = (user: User) => async () => {
		try {
			const info = await api.joinCall(user, callId);
			return { url: info.url, token: info.token, iceServers: info.iceServers };
		} catch (error) {
			// The call is over (404/409): the session ends; anything else (503 while no node is free) is retried.
			if (/: (404|409) /.test((error as Error).message)) return undefined;
			throw error;
		}
	};
	try {
		await test("f  the media node hosting a call is killed (SIGKILL): both participants continue on the other node", async () => {
			await Promise.all(names.map((n) => (pages[n] as Participant).onRejoin(rejoin(users[n] as User))));
			// The pages served earlier cases: only this case's events count.
			const before = await Promise.all(names.map(async (n) => (await (pages[n] as Participant).events()).length));
			const [A, B] = await joinBoth(ctx, until, callId, join, "video and audio both ways before the kill", (info) => ({
				...info,
				rejoin: true,
			}));
			const victim = nodes.find((n) => port(n.url) === port(join.url));
			const survivor = nodes.find((n) => n !== victim);
			assert(victim && survivor, `the call's node ${join.url} is neither ${nodes.map((n) => n.url).join(" nor ")}`);
			say(
				`      call on ${victim.id} (${victim.region}); killing it (SIGKILL), ${survivor.id} (${survivor.region}) stays`,
			);

			const t0 = Date.now();
			victim.process.child.kill("SIGKILL");
			await victim.process.exited;

			await until(`both sessions on ${survivor.id}`, FAILOVER_BOUND_MS, async () => {
				const urls = await Promise.all([A.url(), B.url()]);
				return urls.every((u) => port(u) === port(survivor.url));
			});
			const moved = Date.now() - t0;
			// Decoding "again": new consumers on the new node, their frame counts rising on both sides.
			const first = await until(
				"video decoded both ways on the new node",
				Math.max(FAILOVER_BOUND_MS - moved, 1_000),
				async () => {
					const [sa, sb] = await Promise.all([A.stats(), B.stats()]);
					return framesFrom(sa, bob.id) > 0 && framesFrom(sb, alice.id) > 0 && ([sa, sb] as const);
				},
			);
			const [sa, sb] = await until(
				"frames decoded still rising both ways",
				Math.max(FAILOVER_BOUND_MS - (Date.now() - t0), 1_000),
				async () => {
					const [a, b] = await Promise.all([A.stats(), B.stats()]);
					return (
						framesFrom(a, bob.id) > framesFrom(first[0], bob.id) &&
						framesFrom(b, alice.id) > framesFrom(first[1], alice.id) &&
						([a, b] as const)
					);
				},
			);
			const recovered = Date.now() - t0;
			assert(recovered <= FAILOVER_BOUND_MS, `took ${seconds(recovered)}, bound ${seconds(FAILOVER_BOUND_MS)}`);
			say(
				`      both on ${survivor.id} after ${seconds(moved)}, video both ways after ${seconds(recovered)} ` +
					`(heartbeat ${MEDIA_HEARTBEAT_MS} ms, api stale threshold ${MEDIA_NODE_STALE_SECONDS} s); ` +
					`Alice ← Bob ${framesFrom(sa, bob.id)} frames, Bob ← Alice ${framesFrom(sb, alice.id)} frames`,
			);

			const events = (await Promise.all([A.events(), B.events()])).map((log, i) => log.slice(before[i]));
			for (const [i, log] of events.entries()) {
				const name = names[i];
				assert(
					log.some((e) => e.startsWith("reconnecting ")),
					`${name} saw no reconnecting event: ${log.join(", ")}`,
				);
				assert(
					log.some((e) => e.startsWith("reconnected ") && e.includes("moved=true")),
					`${name} saw no reconnected (moved) event: ${log.join(", ")}`,
				);
				assert(!log.some((e) => e.startsWith("ended")), `${name}'s session ended: ${log.join(", ")}`);
				say(`      ${name}: ${log.filter((e) => e.startsWith("reconnect")).join("; ")}`);
			}
			await Promise.all(
				names.map((n) =>
					(pages[n] as Participant).screenshot(joinPath(ARTIFACTS, `f-failover-${n.toLowerCase()}.png`), 1),
				),
			);
			const movedFrame = channel.frames.find((f) => f.event === "moved" && f.callId === callId);
			assert(movedFrame, `Bob's user channel carried no "moved" call frame: ${JSON.stringify(channel.frames)}`);
			assert(movedFrame.nodeId === survivor.id, `moved to ${String(movedFrame.nodeId)}, not ${survivor.id}`);
			say(`      Bob's user channel: ${JSON.stringify(movedFrame)}`);
			const state = await api.request<{
				call: { state: string; participants: Array<{ userId: string; state: string }> };
			}>(`/v1/calls/${callId}`, { token: alice.accessToken });
			assert(
				state.call.state === "active" && state.call.participants.every((p) => p.state === "joined"),
				`the call after the move: ${JSON.stringify(state.call)}`,
			);
		});
	} finally {
		channel.close();
		await leaveBoth(ctx, callId);
	}
}

async function blip(ctx: FailoverCtx, { test, until, say }: CaseTools): Promise<void> {
	const { api, users, pages } = ctx;
	const [alice, bob] = [users.Alice as User, users.Bob as User];
	const names = ["Alice", "Bob"] as const;
	const conversation = await api.group(alice, [alice, bob], "g: blip");
	const { callId, join } = await api.startCall(alice, conversation);
	const link = await flakyLink(Number(port(join.url)));
	const viaLink = (url: string) => {
		const u = new URL(url);
		u.port = String(link.port);
		return u.toString();
	};
	const channel = await callFrames(api.base, bob);
	try {
		await test("g  a media node that blips (signaling dropped, refused for 1.5 s) keeps the call: same node, resumed", async () => {
			const before = await Promise.all(names.map(async (n) => (await (pages[n] as Participant).events()).length));
			const [A, B] = await joinBoth(ctx, until, callId, join, "video both ways before the blip", (info) => ({
				...info,
				url: viaLink(info.url),
			}));
			const t0 = Date.now();
			link.blip(BLIP_MS);
			const reconnected = (log: string[], i: number) =>
				log.slice(before[i]).some((e) => e.startsWith("reconnected ") && e.includes("resumed=true"));
			await until("both sessions back on the same node, resumed", 15_000, async () => {
				const logs = await Promise.all([A.events(), B.events()]);
				return logs.every(reconnected);
			});
			const back = Date.now() - t0;
			const first = await Promise.all([A.stats(), B.stats()]);
			await until("frames decoded rising both ways after the blip", 15_000, async () => {
				const [sa, sb] = await Promise.all([A.stats(), B.stats()]);
				return (
					framesFrom(sa, bob.id) > framesFrom(first[0], bob.id) &&
					framesFrom(sb, alice.id) > framesFrom(first[1], alice.id)
				);
			});
			say(`      back in ${seconds(back)}, video both ways after ${seconds(Date.now() - t0)}`);
			const logs = (await Promise.all([A.events(), B.events()])).map((log, i) => log.slice(before[i]));
			for (const [i, log] of logs.entries()) {
				const name = names[i];
				const timeline = log.filter((e) => e.startsWith("reconnect"));
				say(`      ${name}: ${timeline.join("; ")}`);
				assert(timeline[0] === "reconnecting disconnected", `${name}: ${timeline.join(", ")}`);
				assert(
					timeline.every((e) => !e.includes("moved=true")),
					`${name} moved although its node lived: ${timeline.join(", ")}`,
				);
				assert(!log.some((e) => e.startsWith("ended")), `${name}'s session ended: ${log.join(", ")}`);
				assert(!log.includes(`participantLeft ${name === "Alice" ? bob.id : alice.id}`), `${name} saw the other leave`);
			}
			assert(!channel.frames.some((f) => f.event === "moved" && f.callId === callId), "the api moved a live call");
		});
	} finally {
		channel.close();
		await leaveBoth(ctx, callId);
		link.close();
	}
}
