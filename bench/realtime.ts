// Realtime figures: fan-out latency from one sender to 100 and to 1,000 sockets
// of one conversation, durable messages/s of one conversation, and memory per
// open socket, each next to a plain Node `ws` broadcast server and a Socket.IO
// server measured in the same run by the same client code. Every server runs
// in its own process (workerd under `wrangler dev`, the baselines as Node
// children); the load generator is this process.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { io as connectSocketIo } from "socket.io-client";
import { WebSocket } from "ws";
import { APP_SUBPROTOCOL, BATCH_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX } from "../protocol/src/realtime.ts";
import { startLocalDatabase } from "../scripts/local/database.ts";
import { type Managed, start, stopAll, waitForHttp } from "../scripts/local/processes.ts";
import { GENERATORS } from "../scripts/local/secrets.ts";
import { cpuSeconds, runtimeEntry, wranglerWorkerd } from "../scripts/local/workerd-processes.ts";
import { startWranglerDev } from "../scripts/local/wrangler.ts";
import type { Figure } from "./accounts.ts";
import { round, summarize } from "./stats.ts";

const ROOT = join(import.meta.dirname, "..");

/** Pause after every socket of the conversation has a message, before the next one is sent. */
const GAP_MS = 2;
/** Sockets opened at once while building up the load. */
const OPEN_CONCURRENCY = 25;
/** Throughput test: messages in flight from the sender, and sockets that only receive. */
const WINDOW = 50;
const THROUGHPUT_RECEIVERS = 3;
/**
 * Each system's throughput is the median of this many runs on the same
 * sockets: one run lasts about a second, and single runs of the same code
 * differed by up to a third (one pause of the server or of this process).
 */
const THROUGHPUT_RUNS = 3;
const MESSAGE_TIMEOUT_MS = 20_000;
/** How long a server may stay busy with a test's leftovers before the next test starts anyway. */
const IDLE_WAIT_MS = 60_000;
/**
 * 64 opaque bytes, as a client would send ciphertext. The first two are 0xff so
 * the product never reads them as an MLS message (those start with version 1).
 */
const CIPHERTEXT = Buffer.concat([Buffer.from([0xff, 0xff]), randomBytes(62)]).toString("base64");

interface Counts {
	/** Measured messages (after `warmup` unmeasured ones) of each fan-out test. */
	fanout100: number;
	fanout1000: number;
	warmup: number;
	/**
	 * Messages of the throughput test: about a second of sending for each
	 * system here, long enough that one stall does not make the figure.
	 */
	throughput: number;
	/**
	 * Sockets per receiving member in the product's fan-out tests. 10 is the
	 * product's MAX_SOCKETS_PER_USER: 1,000 sockets are 100 members × 10. Each
	 * socket that opens costs the room O(sockets) frames and O(members × sockets)
	 * attachment reads (see README): about a minute for 100 × 10, too slow for
	 * --quick, which uses 10 members × 100 sockets (MAX_SOCKETS_PER_USER=100).
	 */
	socketsPerUser: number;
}

const FULL: Counts = { fanout100: 200, fanout1000: 100, warmup: 10, throughput: 10_000, socketsPerUser: 10 };
const QUICK: Counts = { fanout100: 50, fanout1000: 25, warmup: 5, throughput: 3_000, socketsPerUser: 100 };
const PRODUCT_SOCKETS_PER_USER = 10;

function log(message: string): void {
	process.stderr.write(`[realtime] ${message}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- waiting without polling

/** Wakes waiters when the state they watch may have changed; a failure rejects every wait. */
class Signal {
	failure: Error | undefined;
	#waiters = new Set<() => void>();

	notify(): void {
		for (const waiter of [...this.#waiters]) waiter();
	}

	fail(reason: string): void {
		this.failure ??= new Error(reason);
		this.notify();
	}

	until(ok: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
		return new Promise<void>((resolve, reject) => {
			const done = () => {
				clearTimeout(timer);
				this.#waiters.delete(check);
			};
			const check = () => {
				if (this.failure) {
					done();
					reject(this.failure);
				} else if (ok()) {
					done();
					resolve();
				}
			};
			const timer = setTimeout(() => {
				done();
				reject(new Error(`timed out after ${timeoutMs} ms: ${what()}`));
			}, timeoutMs);
			this.#waiters.add(check);
			check();
		});
	}
}

// ---------------------------------------------------------------- clients of the three servers

type Listener = (kind: "message" | "ack", clientId: string) => void;

interface Client {
	send(clientId: string): void;
	/**
	 * Drops the connection (no close handshake: the product's rooms do not
	 * answer a client's Close frame, so a `ws` client's close() waits ~10 s).
	 */
	drop(): void;
}

type Opener = (listener: Listener) => Promise<Client>;

interface WsClientOptions {
	url: string;
	protocols: string[];
	signal: Signal;
	/** Resolve the open only after a first frame of this type. */
	readyFrame?: string;
	onFrame(frame: Record<string, unknown>, listener: Listener): void;
	frameOf(clientId: string): string;
	/**
	 * Set where the server takes batches: messages sent in one turn of this
	 * process's event loop go out as one frame.
	 */
	batchOf?(clientIds: string[]): string;
}

function openWs(options: WsClientOptions, listener: Listener): Promise<Client> {
	return new Promise<Client>((resolve, reject) => {
		const ws = new WebSocket(options.url, options.protocols, { perMessageDeflate: false });
		let open = false;
		let closing = false;
		let outbox: string[] = [];
		const flush = () => {
			const ids = outbox;
			outbox = [];
			ws.send(
				ids.length === 1 ? options.frameOf(ids[0] as string) : (options.batchOf as (ids: string[]) => string)(ids),
			);
		};
		const client: Client = {
			send: (clientId) => {
				if (!options.batchOf) return ws.send(options.frameOf(clientId));
				if (outbox.push(clientId) === 1) queueMicrotask(flush);
			},
			drop: () => {
				closing = true;
				ws.terminate();
			},
		};
		ws.on("unexpected-response", (request, response) => {
			let body = "";
			response.setEncoding("utf8");
			response.on("data", (chunk: string) => {
				body += chunk;
			});
			response.on("end", () => {
				request.destroy();
				reject(new Error(`upgrade refused: ${response.statusCode} ${body.slice(0, 300)}`));
			});
		});
		ws.on("error", (error) => {
			if (open) options.signal.fail(`socket error: ${error.message}`);
			else reject(error);
		});
		ws.on("close", (code, reason) => {
			if (!open) reject(new Error(`socket closed before it was ready: ${code} ${reason.toString()}`));
			else if (!closing) options.signal.fail(`the server closed a socket: ${code} ${reason.toString()}`);
		});
		const ready = () => {
			open = true;
			resolve(client);
		};
		if (!options.readyFrame) ws.on("open", ready);
		ws.on("message", (data) => {
			const received = JSON.parse(String(data)) as Record<string, unknown>;
			const frames = received.type === "batch" ? (received.frames as Array<Record<string, unknown>>) : [received];
			for (const frame of frames) {
				if (!open && frame.type === options.readyFrame) ready();
				else options.onFrame(frame, listener);
			}
		});
	});
}

/**
 * A socket of a conversation in the product: `bearer.<token>` subprotocol, frames per
 * protocol/src/realtime.ts; with `batch`, the batch subprotocol (which the SDK's sockets ask for) and client batches.
 */
function productOpener(base: string, conversationId: string, token: string, signal: Signal, batch: boolean): Opener {
	const url = `${base.replace(/^http/, "ws")}/v1/conversations/${conversationId}/ws`;
	const send = (clientId: string) => ({ type: "send", clientId, ciphertext: CIPHERTEXT });
	return (listener) =>
		openWs(
			{
				url,
				protocols: [...(batch ? [BATCH_SUBPROTOCOL] : []), APP_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`],
				signal,
				readyFrame: "ready",
				frameOf: (clientId) => JSON.stringify(send(clientId)),
				...(batch && {
					batchOf: (clientIds: string[]) => JSON.stringify({ type: "batch", frames: clientIds.map(send) }),
				}),
				onFrame: (frame, on) => {
					if (frame.type === "message") on("message", (frame.message as { clientId: string }).clientId);
					else if (frame.type === "ack") on("ack", frame.clientId as string);
					else if (frame.type === "error") signal.fail(`error frame from the server: ${JSON.stringify(frame)}`);
				},
			},
			listener,
		);
}

/** A client of the `ws` relay: it sends the same frame the product gets; every relayed copy is a "message". */
function wsOpener(url: string, signal: Signal): Opener {
	return (listener) =>
		openWs(
			{
				url,
				protocols: [],
				signal,
				frameOf: (clientId) => JSON.stringify({ type: "send", clientId, ciphertext: CIPHERTEXT }),
				onFrame: (frame, on) => on("message", frame.clientId as string),
			},
			listener,
		);
}

function socketIoOpener(port: number, signal: Signal): Opener {
	return (listener) =>
		new Promise<Client>((resolve, reject) => {
			const socket = connectSocketIo(`http://127.0.0.1:${port}`, {
				transports: ["websocket"],
				forceNew: true,
				reconnection: false,
				timeout: 30_000,
			});
			let open = false;
			let closing = false;
			socket.on("connect", () => {
				open = true;
				resolve({
					send: (clientId) =>
						socket.emit("send", { clientId, ciphertext: CIPHERTEXT }, () => listener("ack", clientId)),
					drop: () => {
						closing = true;
						socket.disconnect();
					},
				});
			});
			socket.on("connect_error", (error) => {
				if (open) signal.fail(`socket.io connect error: ${error.message}`);
				else reject(error);
			});
			socket.on("disconnect", (reason) => {
				if (!closing) signal.fail(`socket.io socket dropped: ${reason}`);
			});
			socket.on("message", (message: { clientId: string }) => listener("message", message.clientId));
		});
}

async function openMany(count: number, signal: Signal, open: (index: number) => Promise<Client>): Promise<Client[]> {
	const clients: Client[] = [];
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(OPEN_CONCURRENCY, count) }, async () => {
			while (next < count) {
				if (signal.failure) throw signal.failure;
				const index = next++;
				clients.push(await open(index));
			}
		}),
	);
	if (signal.failure) throw signal.failure;
	return clients;
}

/** Drops the sockets and gives the server a moment to handle the disconnects before the next test. */
async function dropAll(clients: Client[]): Promise<void> {
	for (const client of clients) client.drop();
	await sleep(1_000);
}

// ---------------------------------------------------------------- measurements

/** One message at a time: latency from send to receipt on each receiving socket. */
class FanoutProbe {
	readonly samples: number[] = [];
	#current: { clientId: string; t0: number; left: number; record: boolean } | undefined;

	readonly signal: Signal;

	constructor(signal: Signal) {
		this.signal = signal;
	}

	readonly receiver: Listener = (kind, clientId) => {
		const current = this.#current;
		if (kind !== "message" || current?.clientId !== clientId) return;
		if (current.record) this.samples.push(performance.now() - current.t0);
		current.left--;
		if (current.left === 0) this.signal.notify();
	};

	async run(sender: Client, receivers: number, warmup: number, count: number, tag: string): Promise<number[]> {
		for (let i = 0; i < warmup + count; i++) {
			const current = { clientId: `${tag}.${i}`, t0: 0, left: receivers, record: i >= warmup };
			this.#current = current;
			current.t0 = performance.now();
			sender.send(current.clientId);
			await this.signal.until(
				() => current.left === 0,
				MESSAGE_TIMEOUT_MS,
				() => `message ${i} reached ${receivers - current.left} of ${receivers} sockets`,
			);
			await sleep(GAP_MS);
		}
		this.#current = undefined;
		return this.samples;
	}
}

/** The sender keeps `window` messages unacknowledged until `count` are acknowledged. */
class ThroughputProbe {
	#prefix = "";
	#count = 0;
	#sent = 0;
	#acked = 0;
	#received = 0;
	#client: Client | undefined;
	#t0 = 0;
	#halfway = 0;

	readonly signal: Signal;
	readonly receivers: number;

	constructor(signal: Signal, receivers: number) {
		this.signal = signal;
		this.receivers = receivers;
	}

	readonly sender: Listener = (kind, clientId) => {
		if (kind !== "ack" || !clientId.startsWith(this.#prefix)) return;
		this.#acked++;
		if (this.#acked === Math.floor(this.#count / 2)) this.#halfway = performance.now();
		if (this.#acked % Math.max(500, Math.floor(this.#count / 4)) === 0) {
			log(
				`  ${this.#acked} of ${this.#count} acknowledged after ${((performance.now() - this.#t0) / 1000).toFixed(2)} s`,
			);
		}
		if (this.#sent < this.#count) this.#sendOne();
		if (this.#acked === this.#count) this.signal.notify();
	};

	readonly receiver: Listener = (kind, clientId) => {
		if (kind !== "message" || !clientId.startsWith(this.#prefix)) return;
		this.#received++;
		if (this.#received === this.#count * this.receivers) this.signal.notify();
	};

	#sendOne(): void {
		(this.#client as Client).send(`${this.#prefix}${this.#sent++}`);
	}

	/**
	 * Returns ms from the first send to the last ack, and ms for the second half
	 * of the acks; then checks every receiver got every message.
	 */
	async run(client: Client, count: number, prefix: string): Promise<{ ms: number; secondHalfMs: number }> {
		this.#client = client;
		this.#prefix = prefix;
		this.#count = count;
		this.#sent = 0;
		this.#acked = 0;
		this.#received = 0;
		const t0 = performance.now();
		this.#t0 = t0;
		for (let i = 0; i < Math.min(WINDOW, count); i++) this.#sendOne();
		await this.signal.until(
			() => this.#acked === count,
			MESSAGE_TIMEOUT_MS + count * 50,
			() => `${this.#acked} of ${count} acknowledged`,
		);
		const end = performance.now();
		await this.signal.until(
			() => this.#received === count * this.receivers,
			MESSAGE_TIMEOUT_MS,
			() => `receivers got ${this.#received} of ${count * this.receivers} copies`,
		);
		return { ms: end - t0, secondHalfMs: end - this.#halfway };
	}
}

// ---------------------------------------------------------------- memory of server processes

function rssBytes(pids: number[]): number {
	let total = 0;
	for (const pid of pids) {
		let status: string;
		try {
			status = readFileSync(`/proc/${pid}/status`, "utf8");
		} catch {
			throw new Error(`server process ${pid} is gone`);
		}
		const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
		if (kb === undefined) throw new Error(`server process ${pid} has exited (no VmRSS)`);
		total += Number(kb) * 1024;
	}
	return total;
}

/** RSS of each group of processes once settled: the median of a few readings after a pause. */
async function settledRss(groups: number[][]): Promise<number[]> {
	await sleep(1_000);
	const readings: number[][] = groups.map(() => []);
	for (let i = 0; i < 5; i++) {
		for (const [g, pids] of groups.entries()) readings[g]?.push(rssBytes(pids));
		await sleep(100);
	}
	return readings.map((r) => r.sort((a, b) => a - b)[2] as number);
}

/**
 * Waits until the processes use under 5% of a core over half a second, so
 * work left over from one test (e.g. queued notifications) does not run
 * during the next. Returns how long that took; gives up after `maxMs`.
 */
async function idle(pids: number[], maxMs: number): Promise<number> {
	const t0 = performance.now();
	while (performance.now() - t0 < maxMs) {
		const before = cpuSeconds(pids);
		await sleep(500);
		if (cpuSeconds(pids) - before < 0.025) break;
	}
	return performance.now() - t0;
}

// ---------------------------------------------------------------- one system, all measurements

interface Results {
	fanout100: number[];
	fanout1000: number[];
	msgsPerSecond: number;
	/** The product only: the same without the batch subprotocol, every frame on its own. */
	unbatchedMsgsPerSecond: number | undefined;
	/** The same over the second half of the acks only. */
	secondHalfMsgsPerSecond: number;
	/** Time to open the 1,000 receiving sockets, OPEN_CONCURRENCY at a time. */
	open1000Ms: number;
	bytesPerSocket: number;
}

interface System {
	name: string;
	signal: Signal;
	/** The server's processes (for wrangler dev: the runtime workerd, not its reload proxy, which the bench bypasses). */
	processes(): { server: number[] };
	/** Sender and receivers of a conversation with `receiverSockets` receiving sockets. */
	conversation(
		receiverSockets: number,
		purpose: "fanout100" | "fanout1000" | "throughput",
		/** The product: offer the batch subprotocol (as the SDK's sockets do) and send client batches. */
		batch: boolean,
	): Promise<{
		sender: Opener;
		receiver: (index: number) => Opener;
	}>;
	/** The ws relay has no acks: the sender's own relayed copy stands in for one. */
	echoIsAck?: boolean;
	/** The product: its throughput is measured with and without the batch subprotocol. */
	batches?: boolean;
}

async function measure(system: System, counts: Counts): Promise<Results> {
	const { signal } = system;
	const t0 = performance.now();
	let serverCpu = cpuSeconds(system.processes().server);
	let ownCpu = process.cpuUsage();
	const step = (what: string) => {
		const cpu = cpuSeconds(system.processes().server);
		const own = process.cpuUsage(ownCpu);
		log(
			`${system.name}: ${what} (at ${((performance.now() - t0) / 1000).toFixed(1)} s; CPU +${(cpu - serverCpu).toFixed(1)} s server, +${((own.user + own.system) / 1e6).toFixed(1)} s load generator)`,
		);
		serverCpu = cpu;
		ownCpu = process.cpuUsage();
	};

	// Fan-out to 100 sockets.
	let conv = await system.conversation(100, "fanout100", true);
	const probe100 = new FanoutProbe(signal);
	let sender = await conv.sender(() => {});
	let receivers = await openMany(100, signal, (i) => conv.receiver(i)(probe100.receiver));
	step("100 sockets open");
	const fanout100 = await probe100.run(sender, 100, counts.warmup, counts.fanout100, "f100");
	step(`fan-out to 100 measured over ${counts.fanout100} messages`);
	await dropAll([sender, ...receivers]);
	const settle = async () => {
		const waited = await idle(system.processes().server, IDLE_WAIT_MS);
		step(`closed; server idle after ${(waited / 1000).toFixed(1)} s`);
	};
	await settle();

	// Messages per second through one conversation.
	const throughputOf = async (batch: boolean) => {
		conv = await system.conversation(THROUGHPUT_RECEIVERS, "throughput", batch);
		const throughput = new ThroughputProbe(signal, THROUGHPUT_RECEIVERS);
		sender = await conv.sender(
			system.echoIsAck ? (kind, id) => throughput.sender(kind === "message" ? "ack" : kind, id) : throughput.sender,
		);
		receivers = await openMany(THROUGHPUT_RECEIVERS, signal, (i) => conv.receiver(i)(throughput.receiver));
		const how = system.batches ? (batch ? " (batch subprotocol)" : " (one frame per message)") : "";
		step(`throughput sockets open${how}`);
		await throughput.run(sender, Math.min(200, counts.throughput / 5), "tw.");
		step("throughput warm-up done");
		const runs: Array<{ ms: number; secondHalfMs: number }> = [];
		for (let run = 1; run <= THROUGHPUT_RUNS; run++) {
			const measured = await throughput.run(sender, counts.throughput, `tm${run}.`);
			step(
				`run ${run}: ${counts.throughput} messages with ${WINDOW} in flight in ${(measured.ms / 1000).toFixed(2)} s${how}`,
			);
			runs.push(measured);
		}
		await dropAll([sender, ...receivers]);
		await settle();
		return runs.sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)] as { ms: number; secondHalfMs: number };
	};
	const { ms, secondHalfMs } = await throughputOf(true);
	const unbatched = system.batches ? await throughputOf(false) : undefined;

	// Memory of 1,000 idle sockets, then fan-out to them. Last: closing them is left to stopping the server.
	conv = await system.conversation(1000, "fanout1000", true);
	const probe1000 = new FanoutProbe(signal);
	sender = await conv.sender(() => {});
	const { server } = system.processes();
	if (server.length === 0) throw new Error(`${system.name}: no server process found to read memory from`);
	const [before = 0] = await settledRss([server]);
	const cpu = [cpuSeconds(server), process.cpuUsage()] as const;
	const opening = performance.now();
	receivers = await openMany(1000, signal, (i) => conv.receiver(i)(probe1000.receiver));
	const open1000Ms = performance.now() - opening;
	const own = process.cpuUsage(cpu[1]);
	step(
		`1,000 sockets open in ${(open1000Ms / 1000).toFixed(1)} s; CPU used meanwhile: server ${(cpuSeconds(server) - cpu[0]).toFixed(1)} s` +
			`, load generator ${((own.user + own.system) / 1e6).toFixed(1)} s`,
	);
	const [after = 0] = await settledRss([server]);
	const fanout1000 = await probe1000.run(sender, 1000, counts.warmup, counts.fanout1000, "f1000");
	step(`fan-out to 1,000 measured over ${counts.fanout1000} messages`);
	for (const client of [sender, ...receivers]) client.drop();

	return {
		fanout100,
		fanout1000,
		msgsPerSecond: (counts.throughput / ms) * 1000,
		unbatchedMsgsPerSecond: unbatched && (counts.throughput / unbatched.ms) * 1000,
		secondHalfMsgsPerSecond: ((counts.throughput - Math.floor(counts.throughput / 2)) / secondHalfMs) * 1000,
		open1000Ms,
		bytesPerSocket: (after - before) / 1000,
	};
}

// ---------------------------------------------------------------- the three systems

async function startBaseline(name: string, script: string, port: number): Promise<Managed> {
	const managed = start(name, process.execPath, [join(ROOT, "bench/baselines", script), String(port)], { cwd: ROOT });
	const listening = new Promise<void>((resolve, reject) => {
		let output = "";
		managed.child.stdout?.on("data", (chunk: string) => {
			output += chunk;
			if (output.includes(`listening ${port}`)) resolve();
		});
		void managed.exited.then((code) => reject(new Error(`${name} exited with ${code} before listening`)));
	});
	await Promise.race([
		listening,
		sleep(15_000).then(() => {
			throw new Error(`${name} did not listen on ${port} within 15 s`);
		}),
	]);
	return managed;
}

function baselineSystem(
	name: string,
	processes: () => { server: number[] },
	opener: Opener,
	signal: Signal,
	echoIsAck: boolean,
): System {
	return {
		name,
		signal,
		echoIsAck,
		processes,
		// One server-wide room: every connected client is in the conversation.
		conversation: async () => ({ sender: opener, receiver: () => opener }),
	};
}

interface Account {
	userId: string;
	token: string;
}

/**
 * wrangler dev runs two workerd processes: a proxy on the public port that
 * relays every request and socket, and the runtime (on a port of its own) that
 * runs the Worker and its Durable Objects. Production has no such proxy: the
 * bench finds the runtime's own entry (scripts/local/workerd-processes.ts) and its clients use that.
 */
function wranglerProcesses(wrangler: Managed, port: number): { server: number[] } {
	return { server: wranglerWorkerd(wrangler.child.pid as number, port).runtime };
}

function pidOf(managed: Managed): () => { server: number[] } {
	const pid = managed.child.pid;
	if (pid === undefined) throw new Error(`${managed.name} has no pid`);
	return () => ({ server: [pid] });
}

/** The floor in workerd: bench/do-relay-worker.ts, a Durable Object relaying like the ws baseline. */
async function measureDoRelay(counts: Counts, dataDir: string, port: number): Promise<Results> {
	const wrangler = startWranglerDev({
		localObservability: false,
		root: ROOT,
		port,
		persistTo: join(dataDir, "do-relay"),
		vars: {},
		config: join(ROOT, "bench/wrangler.do-relay.toml"),
		name: "bench-do-relay",
	});
	try {
		if (!(await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000))) throw new Error("the DO relay did not start");
		const processes = () => wranglerProcesses(wrangler, port);
		const entry = await runtimeEntry(processes().server);
		const signal = new Signal();
		return await measure(
			baselineSystem("do-relay", processes, wsOpener(`${entry.replace(/^http/, "ws")}/relay`, signal), signal, true),
			counts,
		);
	} finally {
		await stopAll();
	}
}

async function productSystem(
	api: string,
	processes: () => { server: number[] },
	signal: Signal,
	socketsPerUser: number,
): Promise<System> {
	const run = Date.now().toString(36);
	const post = async <T>(path: string, body: unknown, token?: string): Promise<T> => {
		const res = await fetch(`${api}${path}`, {
			method: "POST",
			headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
			body: JSON.stringify(body),
		});
		const text = await res.text();
		if (!res.ok) throw new Error(`POST ${path} answered ${res.status}: ${text.slice(0, 300)}`);
		return JSON.parse(text) as T;
	};
	const account = async (i: number): Promise<Account> => {
		const email = `rt-${run}-${i}@example.test`;
		const password = "benchmark passphrase 42";
		const registered = await post<{ user: { id: string } }>("/v1/auth/register", {
			email,
			password,
			handle: `rt_${run}_${i}`,
			displayName: `Bench ${i}`,
		});
		const login = await post<{ accessToken: string }>("/v1/auth/login", { email, password });
		return { userId: registered.user.id, token: login.accessToken };
	};
	// The sender, and enough receiving members for 1,000 sockets (at least the throughput test's).
	const receiverUsers = Math.max(THROUGHPUT_RECEIVERS, Math.ceil(1000 / socketsPerUser));
	const t0 = performance.now();
	const accounts: Account[] = [];
	let next = 0;
	await Promise.all(
		Array.from({ length: 4 }, async () => {
			while (next <= receiverUsers) {
				const index = next++;
				accounts[index] = await account(index);
			}
		}),
	);
	log(
		`workerd: ${accounts.length} accounts registered and signed in (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
	);
	const [owner, ...others] = accounts as [Account, ...Account[]];
	return {
		name: "workerd",
		signal,
		processes,
		batches: true,
		conversation: async (receiverSockets, purpose, batch) => {
			// The throughput test's receivers are one socket each of distinct members.
			const perUser = purpose === "throughput" ? 1 : socketsPerUser;
			const members = others.slice(0, Math.ceil(receiverSockets / perUser));
			const { conversation } = await post<{ conversation: { id: string } }>(
				"/v1/conversations",
				{ type: "group", memberIds: members.map((m) => m.userId), title: `bench ${purpose}` },
				owner.token,
			);
			return {
				sender: productOpener(api, conversation.id, owner.token, signal, batch),
				receiver: (index) =>
					productOpener(api, conversation.id, (members[Math.floor(index / perUser)] as Account).token, signal, batch),
			};
		},
	};
}

async function measureProduct(counts: Counts, dataDir: string, port: number): Promise<Results> {
	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	try {
		const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([k, g]) => [k, g()]));
		const wrangler = startWranglerDev({
			localObservability: false,
			root: ROOT,
			port,
			persistTo: join(dataDir, "realtime"),
			name: "realtime-api",
			vars: {
				...secrets,
				DATABASE_URL: db.databaseUrl,
				DB_WS_PROXY: db.wsProxy,
				LOG_LEVEL: "error",
				// The throughput test sends as fast as acks allow, far above a person's 20/s.
				SENDS_PER_SECOND: "1000000",
				SEND_BURST: "1000000",
				// The receivers never speak; keep them open past the 90 s idle close for the whole run.
				IDLE_TIMEOUT_SECONDS: "3600",
				...(counts.socketsPerUser !== PRODUCT_SOCKETS_PER_USER && {
					MAX_SOCKETS_PER_USER: String(counts.socketsPerUser),
				}),
			},
		});
		if (!(await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000))) throw new Error("api did not start");
		const processes = () => wranglerProcesses(wrangler, port);
		const initial = processes().server.join(",");
		const api = await runtimeEntry(processes().server);
		log(`workerd: clients connect to the runtime's own entry ${api}, past wrangler dev's reload proxy on ${port}`);
		try {
			return await measure(await productSystem(api, processes, new Signal(), counts.socketsPerUser), counts);
		} catch (error) {
			// wrangler dev rebuilds and restarts the runtime when a source file changes, closing every socket.
			if (processes().server.join(",") !== initial) {
				throw new Error(
					`${(error as Error).message} — the workerd runtime was restarted during the run (wrangler dev reloads when a source file changes); run the bench again`,
					{ cause: error },
				);
			}
			throw error;
		}
	} finally {
		await stopAll();
		await db.close();
	}
}

// ---------------------------------------------------------------- entry point

const ms = (value: number) => round(value, 2);
const perSecond = (value: number) => round(value, 0);
const bytes = (value: number) => round(value, 0);

export async function benchRealtime(quick: boolean, dataDir: string, port: number): Promise<Figure[]> {
	const counts = quick ? QUICK : FULL;
	const [load = 0] = loadavg();
	if (load > 1)
		log(`load average ${load.toFixed(2)} on this machine before the run: other work will skew these figures`);

	const wsSignal = new Signal();
	const wsServer = await startBaseline("ws-baseline", "ws-server.ts", port + 2);
	const ws = await measure(
		baselineSystem("ws", pidOf(wsServer), wsOpener(`ws://127.0.0.1:${port + 2}/`, wsSignal), wsSignal, true),
		counts,
	);
	await stopAll();
	const sioSignal = new Signal();
	const sioServer = await startBaseline("socketio-baseline", "socketio-server.ts", port + 3);
	const sio = await measure(
		baselineSystem("socket.io", pidOf(sioServer), socketIoOpener(port + 3, sioSignal), sioSignal, false),
		counts,
	);
	await stopAll();
	const relay = await measureDoRelay(counts, dataDir, port + 4);
	const product = await measureProduct(counts, dataDir, port);
	const f1000Relay = summarize(relay.fanout1000);

	const f100 = { sc: summarize(product.fanout100), ws: summarize(ws.fanout100), sio: summarize(sio.fanout100) };
	const f1000 = { sc: summarize(product.fanout1000), ws: summarize(ws.fanout1000), sio: summarize(sio.fanout1000) };
	const shape = (sockets: number) =>
		`${sockets / Math.min(sockets, counts.socketsPerUser)} members × ${Math.min(sockets, counts.socketsPerUser)} sockets`;
	const vs = (label: string, sioValue: number) => `Node ws relay ${label} (Socket.IO: ${sioValue} ms)`;
	return [
		{
			key: "fanout100_p50_ms",
			label: `Fan-out send → receipt p50, 1 sender → 100 sockets of one conversation (${shape(100)}; ${counts.fanout100} messages one at a time)`,
			value: f100.sc.p50,
			unit: "ms",
			baseline: { label: vs("p50", f100.sio.p50), value: f100.ws.p50 },
		},
		{
			key: "fanout100_p99_ms",
			label: "Fan-out p99, 100 sockets",
			value: f100.sc.p99,
			unit: "ms",
			baseline: { label: vs("p99", f100.sio.p99), value: f100.ws.p99 },
		},
		{
			key: "fanout1000_p50_ms",
			label: `Fan-out p50, 1 sender → 1,000 sockets of one conversation (${shape(1000)}; ${counts.fanout1000} messages)`,
			value: f1000.sc.p50,
			unit: "ms",
			baseline: { label: vs("p50", f1000.sio.p50), value: f1000.ws.p50 },
		},
		{
			key: "fanout1000_p99_ms",
			label: "Fan-out p99, 1,000 sockets",
			value: f1000.sc.p99,
			unit: "ms",
			baseline: { label: vs("p99", f1000.sio.p99), value: f1000.ws.p99 },
		},
		{
			key: "msgs_per_s",
			label: `Durable messages/s, one conversation (1 sender, ${WINDOW} in flight, ${THROUGHPUT_RECEIVERS} receivers, ${counts.throughput} messages, median of ${THROUGHPUT_RUNS} runs; acked after the SQLite write; batch subprotocol and client batches)`,
			value: perSecond(product.msgsPerSecond),
			unit: "msg/s",
			baseline: {
				label: `Socket.IO, in-memory callback ack, NOT durable (Node ws relay, own echo as ack: ${perSecond(ws.msgsPerSecond)} msg/s)`,
				value: perSecond(sio.msgsPerSecond),
			},
		},
		{
			key: "msgs_per_s_unbatched",
			label: "Durable messages/s, same test without the batch subprotocol (one frame per message each way)",
			value: perSecond(product.unbatchedMsgsPerSecond ?? 0),
			unit: "msg/s",
			baseline: { label: "Socket.IO, as above", value: perSecond(sio.msgsPerSecond) },
		},
		{
			key: "msgs_per_s_second_half",
			label: "Durable messages/s over the second half of the acks only (same test)",
			value: perSecond(product.secondHalfMsgsPerSecond),
			unit: "msg/s",
			baseline: {
				label: `Socket.IO, same (Node ws relay: ${perSecond(ws.secondHalfMsgsPerSecond)} msg/s)`,
				value: perSecond(sio.secondHalfMsgsPerSecond),
			},
		},
		{
			key: "open1000_ms",
			label: `Time to open the 1,000 sockets, ${OPEN_CONCURRENCY} at a time (product: token + membership check, then the room)`,
			value: ms(product.open1000Ms),
			unit: "ms",
			baseline: {
				label: `Node ws relay (Socket.IO: ${ms(sio.open1000Ms)} ms)`,
				value: ms(ws.open1000Ms),
			},
		},
		{
			key: "bytes_per_socket",
			label: `Server memory per open idle socket: RSS growth 0 → 1,000 sockets ÷ 1,000, workerd runtime process`,
			value: bytes(product.bytesPerSocket),
			unit: "B",
			baseline: {
				label: `Node ws relay process, same way (Socket.IO: ${bytes(sio.bytesPerSocket)} B)`,
				value: bytes(ws.bytesPerSocket),
			},
		},
		{
			key: "do_fanout1000_p50_ms",
			label:
				"Bare Durable Object relay in the same workerd (bench/do-relay-worker.ts: no auth, no storage), fan-out p50, 1,000 sockets",
			value: f1000Relay.p50,
			unit: "ms",
		},
		{
			key: "do_fanout1000_p99_ms",
			label: "Bare Durable Object relay, fan-out p99, 1,000 sockets",
			value: f1000Relay.p99,
			unit: "ms",
		},
		{
			key: "do_fanout100_p99_ms",
			label: "Bare Durable Object relay, fan-out p99, 100 sockets",
			value: summarize(relay.fanout100).p99,
			unit: "ms",
		},
		{
			key: "do_msgs_per_s",
			label: "Bare Durable Object relay messages/s (own relayed copy as ack, not durable)",
			value: perSecond(relay.msgsPerSecond),
			unit: "msg/s",
		},
		{
			key: "do_open1000_ms",
			label: "Bare Durable Object relay: time to open 1,000 sockets",
			value: ms(relay.open1000Ms),
			unit: "ms",
		},
		{
			key: "do_bytes_per_socket",
			label: "Bare Durable Object relay: workerd memory per open idle socket",
			value: bytes(relay.bytesPerSocket),
			unit: "B",
		},
		{ key: "ws_fanout100_p99_ms", label: "Node ws relay fan-out p99, 100 sockets", value: f100.ws.p99, unit: "ms" },
		{ key: "ws_fanout1000_p50_ms", label: "Node ws relay fan-out p50, 1,000 sockets", value: f1000.ws.p50, unit: "ms" },
		{ key: "ws_fanout1000_p99_ms", label: "Node ws relay fan-out p99, 1,000 sockets", value: f1000.ws.p99, unit: "ms" },
		{ key: "sio_fanout100_p99_ms", label: "Socket.IO fan-out p99, 100 sockets", value: f100.sio.p99, unit: "ms" },
		{ key: "sio_fanout1000_p50_ms", label: "Socket.IO fan-out p50, 1,000 sockets", value: f1000.sio.p50, unit: "ms" },
		{ key: "sio_fanout1000_p99_ms", label: "Socket.IO fan-out p99, 1,000 sockets", value: f1000.sio.p99, unit: "ms" },
		{
			key: "sio_msgs_per_s",
			label: "Socket.IO messages/s (in-memory callback ack, not durable)",
			value: perSecond(sio.msgsPerSecond),
			unit: "msg/s",
		},
		{
			key: "ws_msgs_per_s",
			label: "Node ws relay messages/s (the sender's own relayed copy as ack, not durable)",
			value: perSecond(ws.msgsPerSecond),
			unit: "msg/s",
		},
		{ key: "ws_open1000_ms", label: "Node ws relay: time to open 1,000 sockets", value: ms(ws.open1000Ms), unit: "ms" },
		{ key: "sio_open1000_ms", label: "Socket.IO: time to open 1,000 sockets", value: ms(sio.open1000Ms), unit: "ms" },
		{
			key: "ws_bytes_per_socket",
			label: "Node ws relay memory per open idle socket",
			value: bytes(ws.bytesPerSocket),
			unit: "B",
		},
		{
			key: "sio_bytes_per_socket",
			label: "Socket.IO memory per open idle socket",
			value: bytes(sio.bytesPerSocket),
			unit: "B",
		},
	];
}
