// `npm run test:restore`: the restore drill CI runs (scripts/test.ts counts it).
//
//   1. start environment A (embedded Postgres + `wrangler dev` with fresh local
//      R2, queues and Durable Objects) and seed it through the api: accounts,
//      conversations, messages, read positions, files (one uploaded in parts);
//   2. back it up with the same code as `npm run backup`;
//   3. wipe: stop A and start environment B from nothing (a new database and
//      new Worker state), with the same secrets, as after losing everything;
//   4. restore into B with the same code as `npm run restore`;
//   5. back B up and compare with A's backup: equal, table by table, object by
//      object; then check through B's api that people sign in with their old
//      passwords and read the same history, unread counts and file bytes.
// Ends with the line scripts/test.ts reads: "restore drill: N passed, N failed".
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backup, compareBackups, restore, type Target } from "./backup/archive.ts";
import { type LocalDatabase, startLocalDatabase } from "./local/database.ts";
import { freePort } from "./local/ports.ts";
import { type Managed, start, stopAll, waitForHttp } from "./local/processes.ts";
import { GENERATORS } from "./local/secrets.ts";

const ROOT = join(import.meta.dirname, "..");
const STARTUP_TIMEOUT_MS = 90_000;

let passed = 0;
let failed = 0;
function check(label: string, ok: boolean, detail = ""): void {
	ok ? passed++ : failed++;
	process.stdout.write(`${ok ? "ok  " : "FAIL"} ${label}${ok || !detail ? "" : `: ${detail}`}\n`);
}

interface Environment {
	name: string;
	apiUrl: string;
	target: Target;
	db: LocalDatabase;
	api: Managed;
}

const secrets = Object.fromEntries(Object.entries(GENERATORS).map(([name, generate]) => [name, generate()]));

async function startEnvironment(name: string, workDir: string): Promise<Environment> {
	const db = await startLocalDatabase({ migrationsDir: join(ROOT, "migrations") });
	const port = await freePort();
	const vars = {
		...secrets,
		DATABASE_URL: db.databaseUrl,
		DB_WS_PROXY: db.wsProxy,
		PUBLIC_URL: `http://127.0.0.1:${port}`,
	};
	const api = start(
		`drill ${name}`,
		process.execPath,
		[
			join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
			"dev",
			"--ip",
			"127.0.0.1",
			"--port",
			String(port),
			"--inspector-port",
			String(await freePort()),
			"--persist-to",
			join(workDir, `state-${name}`),
			"--show-interactive-dev-session=false",
			"--log-level",
			"error",
			...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
		],
		{
			cwd: ROOT,
			env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
			// The worker's own JSON lines would drown the drill's output; wrangler's errors still show.
			stdio: ["ignore", "ignore", "pipe"],
		},
	);
	const apiUrl = `http://127.0.0.1:${port}`;
	if (!(await waitForHttp(`${apiUrl}/health`, STARTUP_TIMEOUT_MS)))
		throw new Error(`environment ${name} did not start`);
	return {
		name,
		apiUrl,
		db,
		api,
		target: { apiUrl, databaseUrl: db.databaseUrl, wsProxy: db.wsProxy, adminToken: secrets.ADMIN_TOKEN ?? "" },
	};
}

async function stopEnvironment(env: Environment): Promise<void> {
	if (env.api.child.exitCode === null && env.api.child.signalCode === null) {
		env.api.child.kill("SIGTERM");
		const timer = setTimeout(() => env.api.child.kill("SIGKILL"), 5_000);
		await env.api.exited;
		clearTimeout(timer);
	}
	await env.db.close();
}

/** A small api client for one environment. */
function client(env: Environment) {
	return async <T = Record<string, unknown>>(
		path: string,
		options: { method?: string; body?: unknown; raw?: Uint8Array; token?: string } = {},
	): Promise<{ status: number; body: T; bytes: Uint8Array }> => {
		const headers: Record<string, string> = {
			"cf-connecting-ip": `10.9.${randomBytes(1)[0]}.${randomBytes(1)[0]}`,
		};
		if (options.token) headers.authorization = `Bearer ${options.token}`;
		if (options.body !== undefined) headers["content-type"] = "application/json";
		const res = await fetch(`${env.apiUrl}${path}`, {
			method: options.method ?? (options.body === undefined && !options.raw ? "GET" : "POST"),
			headers,
			body: options.raw ?? (options.body === undefined ? null : JSON.stringify(options.body)),
			signal: AbortSignal.timeout(60_000),
		});
		const bytes = new Uint8Array(await res.arrayBuffer());
		let body = {} as T;
		if (res.headers.get("content-type")?.includes("json") && bytes.length > 0) {
			body = JSON.parse(new TextDecoder().decode(bytes)) as T;
		}
		return { status: res.status, body, bytes };
	};
}

function expectStatus(what: string, res: { status: number; body: unknown }, status: number): void {
	if (res.status !== status) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const ciphertext = () => randomBytes(48 + (randomBytes(1)[0] ?? 0)).toString("base64");

interface Person {
	id: string;
	email: string;
	password: string;
	token: string;
}

interface Seeded {
	people: Person[];
	conversations: string[];
	files: Array<{ id: string; owner: Person; sha256: string }>;
}

async function seed(env: Environment): Promise<Seeded> {
	const api = client(env);
	const people: Person[] = [];
	for (const name of ["alice", "bob", "carol"]) {
		const email = `${name}-${randomBytes(4).toString("hex")}@drill.test`;
		const password = `${name} drill ${randomBytes(6).toString("hex")}`;
		const reg = await api<{ user: { id: string } }>("/v1/auth/register", {
			body: { email, password, handle: `${name}_${randomBytes(3).toString("hex")}`, displayName: name },
		});
		expectStatus("register", reg, 201);
		const login = await api<{ accessToken: string }>("/v1/auth/login", {
			body: { email, password, deviceName: "drill" },
		});
		expectStatus("login", login, 200);
		people.push({ id: reg.body.user.id, email, password, token: login.body.accessToken });
	}
	const [alice, bob, carol] = people as [Person, Person, Person];
	const conversations: string[] = [];
	for (const [owner, members, title] of [
		[alice, [bob, carol], "Drill group"],
		[bob, [alice], "Second"],
	] as const) {
		const created = await api<{ conversation: { id: string } }>("/v1/conversations", {
			token: owner.token,
			body: { type: "group", memberIds: members.map((m) => m.id), title },
		});
		expectStatus("create conversation", created, 201);
		conversations.push(created.body.conversation.id);
	}
	for (let n = 0; n < 12; n++) {
		const sender = [alice, bob, carol][n % 3] as Person;
		const sent = await api(`/v1/conversations/${conversations[0]}/messages`, {
			token: sender.token,
			body: { clientId: `drill-${n}`, ciphertext: ciphertext() },
		});
		expectStatus("send", sent, 201);
	}
	for (let n = 0; n < 3; n++) {
		const sent = await api(`/v1/conversations/${conversations[1]}/messages`, {
			token: bob.token,
			body: { clientId: `second-${n}`, ciphertext: ciphertext() },
		});
		expectStatus("send", sent, 201);
	}
	expectStatus(
		"read",
		await api(`/v1/conversations/${conversations[0]}/read`, { token: carol.token, body: { seq: 5 } }),
		204,
	);
	const files: Seeded["files"] = [];
	for (const [owner, size] of [
		[alice, 100_000],
		[bob, 9 * 1024 * 1024],
	] as const) {
		const data = new Uint8Array(randomBytes(size));
		const created = await api<{
			file: { id: string };
			upload:
				| { method: "single"; url: string; completeUrl: string }
				| { method: "multipart"; partUrl: string; partSize: number; partCount: number; completeUrl: string };
		}>("/v1/files", {
			token: owner.token,
			body: { size, contentType: "application/octet-stream", conversationId: conversations[0] },
		});
		expectStatus("create file", created, 201);
		const { upload } = created.body;
		if (upload.method === "single") {
			expectStatus("upload", await api(upload.url, { method: "PUT", token: owner.token, raw: data }), 200);
		} else {
			for (let n = 1; n <= upload.partCount; n++) {
				const part = data.subarray((n - 1) * upload.partSize, Math.min(size, n * upload.partSize));
				const url = upload.partUrl.replace("{partNumber}", String(n));
				expectStatus("upload part", await api(url, { method: "PUT", token: owner.token, raw: part }), 200);
			}
		}
		expectStatus("complete", await api(upload.completeUrl, { method: "POST", token: owner.token }), 200);
		files.push({ id: created.body.file.id, owner, sha256: sha256(data) });
	}
	return { people, conversations, files };
}

/** What a user sees, to compare before and after. */
async function view(env: Environment, seeded: Seeded, person: Person) {
	const api = client(env);
	const list = await api<{ conversations: Array<{ id: string; lastSeq: number; unread: number }> }>(
		"/v1/conversations",
		{ token: person.token },
	);
	expectStatus("list conversations", list, 200);
	const histories: Record<string, unknown> = {};
	for (const id of seeded.conversations) {
		const history = await api<{ messages: unknown[] }>(`/v1/conversations/${id}/messages?limit=100`, {
			token: person.token,
		});
		if (history.status === 200) histories[id] = history.body.messages;
	}
	return {
		conversations: list.body.conversations.map((c) => ({ id: c.id, lastSeq: c.lastSeq, unread: c.unread })),
		histories,
	};
}

/** wrangler.toml serves web/dist as static assets: `wrangler dev` refuses to start without it. */
function ensureWebBuild(): void {
	const script = join(ROOT, "scripts/build-web.ts");
	if (existsSync(join(ROOT, "web/dist")) || !existsSync(script)) return;
	spawnSync(process.execPath, [script], { cwd: ROOT, stdio: "inherit" });
}

async function main(): Promise<void> {
	ensureWebBuild();
	const work = mkdtempSync(join(tmpdir(), "sc-restore-drill-"));
	const first = join(work, "backup-a");
	const second = join(work, "backup-b");
	const log = (line: string) => process.stdout.write(`${line}\n`);
	let a: Environment | undefined;
	let b: Environment | undefined;
	try {
		log("=== environment A: start and seed");
		a = await startEnvironment("a", work);
		const seeded = await seed(a);
		const before = await Promise.all(seeded.people.map((p) => view(a as Environment, seeded, p)));
		check("seeded A through the api", true);

		log("=== back up A");
		const manifest = await backup(a.target, first, log);
		check(
			"backup holds every kind of state",
			(manifest.postgres.tables.users?.rows ?? 0) >= 3 &&
				manifest.r2.objects === 2 &&
				manifest.durableObjects["chat-room"].objects === 2 &&
				manifest.durableObjects["user-channel"].objects >= 1,
			JSON.stringify({ r2: manifest.r2, durableObjects: manifest.durableObjects }),
		);

		log("=== wipe: stop A, start an empty environment B");
		await stopEnvironment(a);
		a = undefined;
		b = await startEnvironment("b", work);
		const empty = await client(b)("/v1/auth/login", {
			body: { email: seeded.people[0]?.email, password: seeded.people[0]?.password, deviceName: "drill" },
		});
		check("B starts empty (nobody can sign in)", empty.status === 401, String(empty.status));

		log("=== restore into B");
		await restore(b.target, first, {}, log);
		let refused = "";
		await restore(b.target, first, {}, () => {}).catch((error: Error) => {
			refused = error.message;
		});
		check("a second restore into a non-empty database is refused", /not empty/.test(refused), refused);

		log("=== back up B and compare");
		await backup(b.target, second, log);
		const differences = await compareBackups(first, second);
		check(
			"B's backup equals A's: every table, object and conversation log",
			differences.length === 0,
			differences.join("; "),
		);

		const api = client(b);
		for (const person of seeded.people) {
			const login = await api<{ accessToken: string }>("/v1/auth/login", {
				body: { email: person.email, password: person.password, deviceName: "after restore" },
			});
			check(
				`${person.email.split("-")[0]} signs in on B with the old password`,
				login.status === 200,
				String(login.status),
			);
			if (login.status === 200) person.token = login.body.accessToken;
		}
		const after = await Promise.all(seeded.people.map((p) => view(b as Environment, seeded, p)));
		check(
			"history, lastSeq and unread counts are the same for everyone",
			JSON.stringify(after) === JSON.stringify(before),
			"views differ",
		);
		for (const file of seeded.files) {
			const got = await api(`/v1/files/${file.id}/content`, { token: file.owner.token });
			check(`file ${file.id} downloads with the same bytes`, got.status === 200 && sha256(got.bytes) === file.sha256);
		}
		const next = await api<{ message: { seq: number } }>(`/v1/conversations/${seeded.conversations[0]}/messages`, {
			token: seeded.people[0]?.token,
			body: { clientId: "after-restore", ciphertext: ciphertext() },
		});
		check("the restored conversation continues at seq 13", next.body.message?.seq === 13, JSON.stringify(next.body));
	} catch (error) {
		check("drill ran to the end", false, error instanceof Error ? (error.stack ?? error.message) : String(error));
	} finally {
		for (const env of [a, b]) if (env) await stopEnvironment(env).catch(() => {});
		await stopAll();
		rmSync(work, { recursive: true, force: true });
	}
	log(`restore drill: ${passed} passed, ${failed} failed`);
	process.exit(failed === 0 ? 0 : 1);
}

await main();
