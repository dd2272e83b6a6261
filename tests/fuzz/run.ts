// `npm run test:fuzz [-- --requests 10000 --seed N]`
//
// Fuzzes every operation the api documents (its OpenAPI document, made from the
// zod route schemas) against the real stack: the api and its Durable Objects in
// `wrangler dev`, the embedded database. Requests are generated from each
// operation's own schemas and mutations of them (./requests.ts), round-robin
// over the operations so each gets its share, one at a time. Each answer must be:
//   - never a 5xx;
//   - a 4xx in the error envelope ({ error: { code, message, requestId } });
//   - a 4xx that wrote nothing: every Postgres table hashes the same before and
//     after (./fingerprint.ts).
// Prints what it sent and got per operation; exits 1 on any violation, naming
// the request (and the seed that reproduces the run).
import { parseArgs } from "node:util";
import fc from "fast-check";
import { openPool } from "../../scripts/backup/postgres.ts";
import { startFakeProviders } from "../../scripts/local/fake-providers.ts";
import { GENERATORS } from "../../scripts/local/secrets.ts";
import {
	envelopeProblem,
	type OpenApiDocument,
	type Operation,
	operationsOf,
} from "../../workers/api/src/tests/openapi-operations.ts";
import { resolverFor } from "../../workers/api/src/tests/schema-arbitrary.ts";
import { defaultPersistRoot, startStack } from "../stack.ts";
import { changedTables, DatabaseFingerprint, type Fingerprint } from "./fingerprint.ts";
import { type FuzzRequest, fillWorld, requestsFor, SESSION_ENDING } from "./requests.ts";
import { Api, buildWorld, repairWorld, type World } from "./world.ts";

/** The media node heartbeat is repeated this often so calls keep a node to land on (the api drops silent nodes). */
const HEARTBEAT_EVERY_MS = 10_000;
const PROGRESS_EVERY_MS = 15_000;
/**
 * Operations whose successes cost a sign-in (an Argon2id hash) to undo: those
 * that end the caller's session (./requests.ts SESSION_ENDING) and deleting a
 * device (which ends the session that registered it). They get this share of
 * requests, against 1 for the others.
 */
const COSTLY_SHARE = 0.3;
const costly = (op: Operation) => SESSION_ENDING.has(op.key) || op.key === "DELETE /v1/devices/{id}";
/** Share of operations that must answer a success at least once (10,000 requests reach about 80 %). */
const MIN_REACH = 0.5;
/** How often the world's resources are checked and remade (./world.ts repairWorld). */
const REPAIR_EVERY = 200;
/** Violations printed in full; the rest are counted. */
const REPORT_MAX = 25;
/** Throttles as loose as the fuzzer needs: it registers and signs in far faster than a person (the limits have their own tests). */
const LOOSE_LIMITS = JSON.stringify(
	Object.fromEntries(
		["login-ip", "login-account", "register-ip", "forgot-ip", "forgot-account", "token-ip", "refresh-ip"].map(
			(name) => [name, { limit: 1_000_000 }],
		),
	),
);

const { values } = parseArgs({
	options: {
		requests: { type: "string", default: "10000" },
		seed: { type: "string" },
	},
});
const total = Number(values.requests);
if (!Number.isInteger(total) || total <= 0) {
	process.stderr.write(`--requests must be a positive integer (got ${values.requests})\n`);
	process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);

const say = (line: string) => process.stdout.write(`[fuzz] ${line}\n`);

interface Tally {
	sent: number;
	byStatus: Map<number, number>;
	/** Time spent waiting for this operation's answers. */
	ms: number;
}

interface Answer {
	status: number;
	text: string;
}

async function send(api: string, request: FuzzRequest, world: World): Promise<Answer> {
	const tokens: Record<FuzzRequest["caller"], string | undefined> = {
		owner: world.owner.token,
		other: world.other.token,
		victim: world.victim.token,
		none: undefined,
		forged: `${world.owner.token.slice(0, -8)}AAAAAAAA`,
	};
	const token = tokens[request.caller];
	const body = request.body && ("bytes" in request.body ? request.body.bytes : fillWorld(request.body.text, world));
	const res = await fetch(`${api}${fillWorld(request.url, world)}`, {
		method: request.op.method,
		headers: {
			...(token && { authorization: `Bearer ${token}` }),
			...(request.body && { "content-type": request.body.contentType }),
		},
		...(body !== undefined && { body }),
		signal: AbortSignal.timeout(60_000),
	});
	return { status: res.status, text: await res.text() };
}

function describe(request: FuzzRequest, world: World): string {
	const body = request.body
		? "bytes" in request.body
			? ` <${request.body.bytes.length} bytes>`
			: ` ${request.body.contentType} ${fillWorld(request.body.text, world).slice(0, 300)}`
		: "";
	return `${request.op.method} ${fillWorld(request.url, world)} as ${request.caller} (${request.kind})${body}`;
}

/** Keeps the victim signed in (and registered) after requests that end its session or account. */
async function reviveVictim(api: Api, world: World): Promise<void> {
	try {
		world.victim = await api.login(world.victim);
	} catch {
		world.victim = await api.register("victim");
	}
}

async function main(): Promise<void> {
	const started = performance.now();
	// Push and email go to local fakes that check what the real providers check (scripts/local/fake-providers.ts).
	const mediaNodeSecret = GENERATORS.MEDIA_NODE_SECRET();
	const fakes = await startFakeProviders({ mediaNodeSecret });
	const vars = { ...fakes.bindings, MEDIA_NODE_SECRET: mediaNodeSecret, RATE_LIMITS: LOOSE_LIMITS };
	const stack = await startStack(vars, defaultPersistRoot(), say, "fuzz").catch(async (error: unknown) => {
		await fakes.close();
		throw error;
	});
	const pool = openPool(stack.database);
	let failures = 0;
	const tally = new Map<string, Tally>();
	const repairs = new Map<string, number>();
	const timing = { requests: 0, fingerprints: 0 };
	try {
		const api = new Api(stack.runtime);
		const doc = await api.call<OpenApiDocument>("GET", "/openapi.json");
		const operations = operationsOf(doc);
		const world = await buildWorld(api, mediaNodeSecret);
		const fingerprint = await DatabaseFingerprint.create(pool);
		// The detector must see a write, or every "wrote nothing" below would be vacuous.
		const probeBefore = await fingerprint.take();
		await api.register("probe");
		const seen = changedTables(probeBefore, await fingerprint.take());
		if (!seen.includes("users")) throw new Error(`the fingerprint missed a registration (changed: ${seen.join(", ")})`);
		say(
			`${operations.length} operations, ${total} requests, seed ${seed}; fingerprinting ${fingerprint.tables.length} tables`,
		);
		const resolve = resolverFor(doc);
		// Each operation's requests drawn up front from its own seed (seed + its index): the same seed, the
		// same run; costly operations get a smaller share.
		const share = (op: Operation) => (costly(op) ? COSTLY_SHARE : 1);
		const perOperation = Math.ceil(total / operations.reduce((n, op) => n + share(op), 0));
		const drawing = performance.now();
		const drawn = operations.map((op, k) =>
			fc.sample(requestsFor(op, resolve), { numRuns: Math.ceil(perOperation * share(op)), seed: seed + k }),
		);
		// Round-robin over the operations, so each gets its share spread over the whole run.
		const schedule: FuzzRequest[] = [];
		for (let round = 0; schedule.length < total; round++) {
			for (const list of drawn) {
				const request = list[round];
				if (request && schedule.length < total) schedule.push(request);
			}
		}
		say(`drew ${perOperation} requests per operation in ${((performance.now() - drawing) / 1000).toFixed(1)} s`);
		let before: Fingerprint = await fingerprint.take();
		let lastHeartbeat = Date.now();
		let lastProgress = Date.now();
		for (let i = 0; i < total; i++) {
			if (Date.now() - lastHeartbeat > HEARTBEAT_EVERY_MS) {
				await api.nodeHeartbeat(mediaNodeSecret);
				lastHeartbeat = Date.now();
				before = await fingerprint.take();
			}
			if (i > 0 && i % REPAIR_EVERY === 0) {
				const remade = await repairWorld(api, world, mediaNodeSecret);
				for (const what of remade) repairs.set(what, (repairs.get(what) ?? 0) + 1);
				before = await fingerprint.take();
			}
			const request = schedule[i] as FuzzRequest;
			const { op } = request;
			const t0 = performance.now();
			const answer = await send(stack.runtime, request, world);
			const t1 = performance.now();
			const after = await fingerprint.take();
			timing.requests += t1 - t0;
			timing.fingerprints += performance.now() - t1;
			const problems: string[] = [];
			if (answer.status >= 500) problems.push(`answered ${answer.status}`);
			if (answer.status >= 400 && answer.status < 500) {
				const problem = envelopeProblem(answer.text);
				if (problem) problems.push(`a ${answer.status} not in the error envelope: ${problem}`);
				const changed = changedTables(before, after);
				if (changed.length > 0) problems.push(`a ${answer.status} that changed ${changed.join(", ")}`);
			}
			if (problems.length > 0) {
				failures++;
				if (failures <= REPORT_MAX) {
					say(`VIOLATION #${failures}: ${problems.join("; ")}`);
					say(`  request: ${describe(request, world)}`);
					say(`  answer:  ${answer.status} ${answer.text.slice(0, 300)}`);
				}
			}
			const t = tally.get(op.key) ?? { sent: 0, byStatus: new Map(), ms: 0 };
			t.sent++;
			t.ms += t1 - t0;
			t.byStatus.set(answer.status, (t.byStatus.get(answer.status) ?? 0) + 1);
			tally.set(op.key, t);
			if (answer.status < 300 && SESSION_ENDING.has(op.key) && request.caller === "victim") {
				await reviveVictim(api, world);
				before = await fingerprint.take();
			} else if (answer.status === 401 && (request.caller === "owner" || request.caller === "other")) {
				// Some successes end a session on the side (deleting a device ends the session it signed in with).
				const remade = await repairWorld(api, world, mediaNodeSecret);
				for (const what of remade) repairs.set(what, (repairs.get(what) ?? 0) + 1);
				before = await fingerprint.take();
			} else {
				before = after;
			}
			if (Date.now() - lastProgress > PROGRESS_EVERY_MS) {
				lastProgress = Date.now();
				say(`${i + 1}/${total} requests, ${failures} violations`);
			}
		}
	} finally {
		await pool.end().catch(() => {});
		await stack.stop();
		await fakes.close();
	}
	report(tally);
	if (repairs.size > 0) say(`remade along the way: ${[...repairs].map(([what, n]) => `${what} ×${n}`).join(", ")}`);
	const seconds = ((performance.now() - started) / 1000).toFixed(0);
	say(
		`time in requests ${(timing.requests / 1000).toFixed(1)} s, in database fingerprints ${(timing.fingerprints / 1000).toFixed(1)} s`,
	);
	const sent = [...tally.values()].reduce((n, t) => n + t.sent, 0);
	say(`${sent} requests over ${tally.size} operations in ${seconds} s: ${failures} violations (seed ${seed})`);
	// A world that broke (every token refused, every id gone) would make refusals easy: demand reach.
	const reached = [...tally.values()].filter((t) => [...t.byStatus.keys()].some((status) => status < 300)).length;
	say(`${reached} of ${tally.size} operations answered a success at least once`);
	if (reached < tally.size * MIN_REACH) {
		say(`too little reach: fewer than ${MIN_REACH * 100} % of the operations ever succeeded`);
		failures++;
	}
	if (failures > 0) {
		say(`reproduce with: npm run test:fuzz -- --requests ${total} --seed ${seed}`);
		process.exit(1);
	}
}

function report(tally: Map<string, Tally>): void {
	const rows = [...tally].sort(([a], [b]) => a.localeCompare(b));
	for (const [key, t] of rows) {
		const statuses = [...t.byStatus]
			.sort(([a], [b]) => a - b)
			.map(([status, n]) => `${status}×${n}`)
			.join(" ");
		say(`${key.padEnd(52)} ${String(t.sent).padStart(5)} ${(t.ms / t.sent).toFixed(0).padStart(4)} ms  ${statuses}`);
	}
}

await main().catch((error: unknown) => {
	say(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
	process.exit(1);
});
