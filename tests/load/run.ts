// `npm run test:load [-- --duration 300 --sockets 1000 --members 10 --rate 1 --users N --persist-to DIR]`
//
// Load test against the real stack (api + Durable Objects in `wrangler dev`,
// embedded database): `sockets` ÷ `members` group conversations of `members`
// distinct users each, one socket per member, every conversation sending
// `rate` messages per second in total (members take turns) for `duration`
// seconds, with the product's own limits (send rate, idle close: clients ping
// every 30 s). The clients check that every acknowledged message reaches every
// member exactly once, in seq order, intact (tests/load/delivery.ts), then
// compare each conversation's stored log (GET …/messages) with what was
// delivered. Prints the figures; exits non-zero on any violation or error
// (error frame, closed socket, unacknowledged send, unreadable log).
//
// Why 1 msg/s per conversation (100 msg/s, 1,000 deliveries/s in all): a busy
// group, each member writing every 10 s, and about what this 2-core machine
// carries. wrangler dev runs the Worker and every Durable Object in one workerd
// thread (each message: a SQLite write, 10 socket sends, user-channel reports);
// measured here, 50 msg/s left it partly idle (ack p50 13 ms), 100 msg/s keeps
// it busy (p50 ≈ 0.35 s) and 200 msg/s (`--rate 2`) still gets every message
// acked as fast as it is sent, the rooms' group commit taking bigger batches,
// with acks waiting ≈ 0.6 s.

import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { defaultPersistRoot, startStack } from "../stack.ts";
import { ciphertextFor, DeliveryCheck } from "./delivery.ts";
import { MemberSocket } from "./member-socket.ts";
import { type Account, createAccounts, createGroups, type Group, storedLog } from "./population.ts";

/** Sockets opened at once while building up the load (as bench/realtime.ts). */
const OPEN_CONCURRENCY = 25;
/** Accounts registered at once: each costs two Argon2id hashes, and the api runs at most two at a time. */
const REGISTER_CONCURRENCY = 4;
/** A client's heartbeat: the product closes sockets silent for IDLE_TIMEOUT_SECONDS (90 s). */
const PING_EVERY_MS = 30_000;
/**
 * After the last send, acks and deliveries still on their way are awaited as
 * long as they keep coming: the run fails when none arrives for this long
 * (a stall), or when the drain takes longer than DRAIN_MAX_MS in all.
 */
const DRAIN_STALL_MS = 60_000;
const DRAIN_MAX_MS = 600_000;
const PROGRESS_EVERY_MS = 10_000;

const { values } = parseArgs({
	options: {
		duration: { type: "string", default: "300" },
		sockets: { type: "string", default: "1000" },
		members: { type: "string", default: "10" },
		rate: { type: "string", default: "1" },
		users: { type: "string" },
		"persist-to": { type: "string" },
	},
});

function positive(name: string, raw: string | undefined): number {
	const value = Number(raw);
	if (!Number.isFinite(value) || value <= 0) {
		process.stderr.write(`--${name} must be a positive number (got ${raw})\n`);
		process.exit(2);
	}
	return value;
}

const durationS = positive("duration", values.duration);
const members = Math.floor(positive("members", values.members));
const conversations = Math.floor(positive("sockets", values.sockets) / members);
const sockets = conversations * members;
const rate = positive("rate", values.rate);
/** Default: as many users as conversations, each a member of `members` of them (one socket in each). */
const users = Math.floor(positive("users", values.users ?? String(Math.max(members, conversations))));

const log = (line: string) => process.stdout.write(`[load] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(count, concurrency) }, async () => {
			while (next < count) await work(next++);
		}),
	);
}

async function main(): Promise<boolean> {
	const [load = 0] = loadavg();
	log(
		`${conversations} conversations × ${members} members = ${sockets} sockets, ${users} users, ` +
			`${rate} msg/s per conversation (${fixed(conversations * rate, 0)} msg/s in all) for ${durationS} s`,
	);
	if (load > 1) log(`load average ${load.toFixed(2)} before the run: other work on this machine skews the figures`);
	if (users < members) throw new Error(`--users must be at least --members (${members})`);

	const check = new DeliveryCheck(conversations, members);
	const stack = await startStack({}, values["persist-to"] ?? defaultPersistRoot(), log);
	const live: MemberSocket[] = [];
	try {
		let t = performance.now();
		const accounts = await createAccounts(stack.api, users, REGISTER_CONCURRENCY);
		const registerMs = performance.now() - t;
		log(
			`${users} accounts registered and signed in in ${seconds(registerMs)} (${fixed(registerMs / users, 0)} ms each, ${REGISTER_CONCURRENCY} at a time)`,
		);
		t = performance.now();
		const groups: Group[] = await createGroups(stack.api, accounts, conversations, members);
		log(`${conversations} group conversations created in ${seconds(performance.now() - t)}`);

		const socketOf: MemberSocket[][] = groups.map(() => []);
		t = performance.now();
		const cpuBeforeOpen = stack.serverCpuSeconds();
		await pool(sockets, OPEN_CONCURRENCY, async (i) => {
			const c = Math.floor(i / members);
			const m = i % members;
			const group = groups[c] as Group;
			const member = group.members[m] as Account;
			const socket = await MemberSocket.open(stack.api, group.id, member.token, {
				ready: (lastSeq) => check.ready(c, m, lastSeq),
				message: (message, at) => check.delivered(c, m, message, at),
				ack: (clientId, seq, at) => check.acked(c, m, clientId, seq, at),
				problem: (kind, detail) => check.error(kind, `conversation ${c} member ${m}: ${detail}`),
			});
			(socketOf[c] as MemberSocket[])[m] = socket;
			live.push(socket);
		});
		const openMs = performance.now() - t;
		log(
			`${sockets} sockets open in ${seconds(openMs)} (server CPU ${fixed(stack.serverCpuSeconds() - cpuBeforeOpen)} s meanwhile)`,
		);

		// Heartbeats, spread over the interval, as a client keeps its socket alive.
		const pings = live.map((socket, i) =>
			setTimeout(
				() => {
					socket.send({ type: "ping" });
					pings[i] = setInterval(() => socket.send({ type: "ping" }), PING_EVERY_MS);
				},
				(i * PING_EVERY_MS) / live.length,
			),
		);

		// Steady sends: each conversation every 1/rate s, its members in turn, conversations spread over the interval.
		const intervalMs = 1000 / rate;
		const counters = groups.map(() => Array.from({ length: members }, () => 0));
		const turns = groups.map(() => 0);
		const sendFrom = (c: number) => {
			const m = (turns[c] as number) % members;
			turns[c] = (turns[c] as number) + 1;
			const n = (counters[c] as number[])[m] as number;
			(counters[c] as number[])[m] = n + 1;
			const clientId = `ld.${c}.${m}.${n}`;
			const member = (groups[c] as Group).members[m] as Account;
			check.sent(c, m, member.userId, clientId, performance.now());
			((socketOf[c] as MemberSocket[])[m] as MemberSocket).send({
				type: "send",
				clientId,
				ciphertext: ciphertextFor(clientId),
			});
		};
		const loopDelay = monitorEventLoopDelay({ resolution: 10 });
		loopDelay.enable();
		const cpuBeforeSend = stack.serverCpuSeconds();
		const ownCpuBefore = process.cpuUsage();
		const sendStart = performance.now();
		const senders: NodeJS.Timeout[] = [];
		for (let c = 0; c < conversations; c++) {
			senders.push(
				setTimeout(
					() => {
						sendFrom(c);
						senders[c] = setInterval(() => sendFrom(c), intervalMs);
					},
					(c * intervalMs) / conversations,
				),
			);
		}
		const progress = setInterval(() => {
			const f = check.counts();
			log(
				`at ${seconds(performance.now() - sendStart)}: sent ${f.sent}, acked ${f.acked}, delivered ${f.delivered}, ` +
					`errors ${f.errors}, violations ${f.violations}`,
			);
		}, PROGRESS_EVERY_MS);
		await sleep(durationS * 1000);
		for (const timer of senders) clearInterval(timer);
		const sendMs = performance.now() - sendStart;
		const serverCpu = stack.serverCpuSeconds() - cpuBeforeSend;
		const ownCpu = process.cpuUsage(ownCpuBefore);
		loopDelay.disable();

		// Drain: every ack and delivery still on its way.
		t = performance.now();
		let progressAt = performance.now();
		let seen = -1;
		while (!check.settled()) {
			const now = performance.now();
			const { acked, delivered } = check.counts();
			if (acked + delivered !== seen) {
				seen = acked + delivered;
				progressAt = now;
			}
			if (now - progressAt > DRAIN_STALL_MS || now - t > DRAIN_MAX_MS) break;
			await sleep(250);
		}
		clearInterval(progress);
		const drained = check.settled();
		if (drained) log(`drained in ${seconds(performance.now() - t)}`);
		else {
			log(
				`not drained after ${seconds(performance.now() - t)} (nothing arrived for ${seconds(performance.now() - progressAt)}): ${check.outstanding()}`,
			);
			const probe = performance.now();
			const health = await fetch(`${stack.api}/health`, { signal: AbortSignal.timeout(30_000) }).then(
				(res) => `answered ${res.status}`,
				(error: Error) => `did not answer (${error.message})`,
			);
			log(`GET /health ${health} after ${seconds(performance.now() - probe)}`);
		}
		for (const timer of pings) clearInterval(timer);
		check.finish();

		// The durable log, as the api serves it, against what was delivered live.
		t = performance.now();
		await pool(conversations, 4, async (c) => {
			try {
				check.compareStored(c, await storedLog(stack.api, groups[c] as Group));
			} catch (error) {
				check.error("stored log could not be read", `conversation ${c}: ${(error as Error).message}`);
			}
		});
		log(`stored logs of ${conversations} conversations compared in ${seconds(performance.now() - t)}`);
		if (stack.restarted()) {
			check.error(
				"workerd restarted",
				"wrangler dev reloads the Worker when a source file changes: run the load test again",
			);
		}

		const f = check.figures();
		const ackSpanMs = Math.max(sendMs, check.lastAckAt - sendStart);
		const lines = [
			`sockets ${sockets} (${conversations} conversations × ${members} members, ${users} users), open in ${seconds(openMs)}`,
			`accounts ${users} registered + signed in in ${seconds(registerMs)}`,
			`send phase ${seconds(sendMs)} at ${rate} msg/s per conversation`,
			`messages sent ${f.sent}, acked ${f.acked} (${fixed((f.acked / ackSpanMs) * 1000)} msg/s from the first send to the last ack)`,
			`deliveries ${f.delivered} of ${f.expectedDeliveries} expected (acked × ${members} members; ${fixed((f.delivered / ackSpanMs) * 1000, 0)}/s)`,
			`ack latency p50 ${fixed(f.ackP50)} ms, p99 ${fixed(f.ackP99)} ms, max ${fixed(f.ackMax)} ms`,
			`delivery latency (send → each member) p50 ${fixed(f.deliveryP50)} ms, p99 ${fixed(f.deliveryP99)} ms`,
			`server CPU (workerd) ${fixed(serverCpu / (sendMs / 1000), 2)} cores; load generator + embedded database ${fixed((ownCpu.user + ownCpu.system) / 1e3 / sendMs, 2)} cores; its event-loop delay p99 ${fixed(loopDelay.percentile(99) / 1e6)} ms`,
			`errors ${f.errors}, violations ${f.violations}`,
		];
		process.stdout.write(`\n=== load test figures\n${lines.join("\n")}\n`);
		for (const [title, kinds] of [
			["violation", check.violations],
			["error", check.errors],
		] as const) {
			for (const [kind, { count, examples }] of kinds) {
				process.stdout.write(`${title}: ${kind} × ${count}\n${examples.map((e) => `    ${e}`).join("\n")}\n`);
			}
		}
		const ok = f.violations === 0 && f.errors === 0 && f.acked > 0 && f.delivered === f.expectedDeliveries;
		process.stdout.write(`load test: ${ok ? "PASS" : "FAIL"}\n`);
		return ok;
	} finally {
		for (const socket of live) socket.drop();
		await stack.stop();
	}
}

main().then(
	(ok) => process.exit(ok ? 0 : 1),
	(error: unknown) => {
		process.stdout.write(
			`load test: FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
		);
		process.exit(1);
	},
);
