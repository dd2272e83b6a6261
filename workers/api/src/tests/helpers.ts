import { env, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { loadConfig } from "../config/config.ts";
import { type Database, openDatabase } from "../db/client.ts";

export interface Json {
	[key: string]: unknown;
}

export interface CallOptions {
	method?: string;
	body?: unknown;
	token?: string | undefined;
	ip?: string;
	headers?: Record<string, string>;
}

export interface Reply<T = Json> {
	status: number;
	body: T;
	headers: Headers;
}

let counter = 0;
/** A unique suffix per call, so tests sharing one database never collide. */
export function unique(): string {
	counter++;
	return `${Date.now().toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A distinct client address per test user, so per-IP throttles stay out of unrelated tests. */
export function randomIp(): string {
	const b = crypto.getRandomValues(new Uint8Array(3));
	return `10.${b[0]}.${b[1]}.${b[2]}`;
}

export async function call<T = Json>(path: string, options: CallOptions = {}): Promise<Reply<T>> {
	const headers: Record<string, string> = { "cf-connecting-ip": options.ip ?? randomIp(), ...options.headers };
	if (options.token) headers.authorization = `Bearer ${options.token}`;
	if (options.body !== undefined) headers["content-type"] = "application/json";
	const res = await SELF.fetch(`http://api.test${path}`, {
		method: options.method ?? (options.body === undefined ? "GET" : "POST"),
		headers,
		...(options.body !== undefined && { body: JSON.stringify(options.body) }),
	});
	const text = await res.text();
	return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, headers: res.headers };
}

export const STRONG_PASSWORD = "correct horse battery staple 42";

export interface TestUser {
	id: string;
	email: string;
	handle: string;
	password: string;
	ip: string;
}

export interface SignedIn extends TestUser {
	accessToken: string;
	refreshToken: string;
	sessionId: string;
}

export async function register(
	overrides: Partial<{ email: string; handle: string; password: string }> = {},
): Promise<TestUser> {
	const id = unique();
	const email = overrides.email ?? `user-${id}@example.test`;
	const handle = overrides.handle ?? `u_${id}`;
	const password = overrides.password ?? STRONG_PASSWORD;
	const ip = randomIp();
	const res = await call<{ user: { id: string } }>("/v1/auth/register", {
		body: { email, password, handle, displayName: `User ${id}` },
		ip,
	});
	expect(res.status, JSON.stringify(res.body)).toBe(201);
	return { id: res.body.user.id, email, handle, password, ip };
}

export async function login(user: TestUser, deviceName = "test device"): Promise<SignedIn> {
	const res = await call<{ accessToken: string; refreshToken: string; sessionId: string }>("/v1/auth/login", {
		body: { email: user.email, password: user.password, deviceName },
		ip: user.ip,
	});
	expect(res.status, JSON.stringify(res.body)).toBe(200);
	return { ...user, ...res.body };
}

export async function signUp(): Promise<SignedIn> {
	return login(await register());
}

export async function mailbox(email: string): Promise<Array<{ template: string; text: string; subject: string }>> {
	const res = await call<{ emails: Array<{ template: string; text: string; subject: string }> }>(
		`/dev/mailbox?to=${encodeURIComponent(email)}`,
	);
	expect(res.status).toBe(200);
	return res.body.emails;
}

/** The code an email carries ("Or enter this code: …"). */
export function codeIn(text: string): string {
	const m = /enter this code: (\S+)/.exec(text);
	if (!m?.[1]) throw new Error(`no code in email: ${text}`);
	return m[1];
}

/** Runs `work` with a connection to the test database, closed afterwards. */
export async function withDb<T>(work: (db: Database) => Promise<T>): Promise<T> {
	const handle = openDatabase((await loadConfig(env)).database);
	try {
		return await work(handle.db);
	} finally {
		await handle.close();
	}
}
