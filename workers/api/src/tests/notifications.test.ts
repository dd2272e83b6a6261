// Notifications end to end: push subscriptions, the queue consumer's ack /
// retry / dead-letter decisions, each push provider against a local fake that
// checks what the real service checks (scripts/local/fake-providers.ts), email
// through the dev mailbox, Resend and SMTP, and no plaintext in any push.
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../config/config.ts";
import { notificationDeadLetters, notificationDeliveries, outboundEmails } from "../db/schema/index.ts";
import { renderEmail } from "../email/templates.ts";
import type { Env } from "../env.ts";
import worker from "../index.ts";
import { base64FromBytes, base64url, fromBase64 } from "../lib/crypto.ts";
import { newId } from "../lib/ids.ts";
import {
	consumeNotifications,
	type NotificationJob,
	type PushJob,
	RETRY_BASE_SECONDS,
} from "../notifications/consumer.ts";
import { ResendProvider } from "../notifications/email/resend.ts";
import { call, codeIn, type Json, login, mailbox, register, type SignedIn, signUp, unique, withDb } from "./helpers.ts";
import { b64, createGroup } from "./sockets.ts";

/** Bindings globalSetup adds for the fakes (scripts/local/fake-providers.ts). */
interface FakeBindings {
	TEST_FAKES_URL: string;
	TEST_RESEND_ENDPOINT: string;
	TEST_RESEND_API_KEY: string;
	TEST_SMTP_PORT: string;
	TEST_SMTP_USER: string;
	TEST_SMTP_PASSWORD: string;
}
const testEnv = env as unknown as Env & FakeBindings;
const FAKES = testEnv.TEST_FAKES_URL;
const MAIN_QUEUE = "secureconnect-notifications-dev";
const DLQ = "secureconnect-notifications-dlq-dev";

interface Recorded {
	provider: string;
	target: string;
	status: number;
	problems: string[];
	headers: Record<string, string>;
	body: string;
	transport?: string;
}

type ErrorReply = { error: { code: string } };

// ---------------------------------------------------------------- helpers

async function fakeRequests(target: string, provider?: string): Promise<Recorded[]> {
	const q = new URLSearchParams({ target, ...(provider && { provider }) });
	const res = await fetch(`${FAKES}/_control/requests?${q}`);
	return ((await res.json()) as { requests: Recorded[] }).requests;
}

async function script(target: string, statuses: number[]): Promise<void> {
	const res = await fetch(`${FAKES}/_control/script`, {
		method: "POST",
		body: JSON.stringify({ target, statuses }),
	});
	expect(res.status).toBe(204);
}

async function tokenExchanges(): Promise<number> {
	return ((await (await fetch(`${FAKES}/_control/stats`)).json()) as { tokenExchanges: number }).tokenExchanges;
}

async function addDevice(user: SignedIn): Promise<string> {
	const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
	const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
	const res = await call<{ device: { id: string } }>("/v1/devices", {
		token: user.accessToken,
		body: { name: "phone", credential: base64FromBytes(raw) },
	});
	expect(res.status, JSON.stringify(res.body)).toBe(201);
	return res.body.device.id;
}

interface Sub {
	id: string;
	kind: string;
	deviceId: string;
	failureCount: number;
	lastSuccessAt: string | null;
}

async function subscribe(user: SignedIn, body: Json): Promise<Sub> {
	const res = await call<{ subscription: Sub }>("/v1/push/subscriptions", { token: user.accessToken, body });
	expect(res.status, JSON.stringify(res.body)).toBe(201);
	return res.body.subscription;
}

/** A device of the user's with an FCM subscription; returns the subscription's token. */
async function subscribeFcm(user: SignedIn): Promise<string> {
	const token = fcmToken();
	await subscribe(user, { kind: "fcm", token, deviceId: await addDevice(user) });
	return token;
}

async function subscriptions(user: SignedIn): Promise<Sub[]> {
	const res = await call<{ subscriptions: Sub[] }>("/v1/push/subscriptions", { token: user.accessToken });
	expect(res.status).toBe(200);
	return res.body.subscriptions;
}

const fcmToken = () => `fcm:${unique()}-${"t".repeat(24)}`;
const apnsToken = () =>
	[...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");

/** A browser's side of a Web Push subscription: its ECDH key pair and auth secret. */
interface Browser {
	id: string;
	keys: CryptoKeyPair;
	p256dh: Uint8Array;
	auth: Uint8Array;
	subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
}

async function browser(): Promise<Browser> {
	const id = `wp${unique().replace(/[^A-Za-z0-9]/g, "")}`;
	const keys = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
		"deriveBits",
	])) as CryptoKeyPair;
	const p256dh = new Uint8Array((await crypto.subtle.exportKey("raw", keys.publicKey)) as ArrayBuffer);
	const auth = crypto.getRandomValues(new Uint8Array(16));
	return {
		id,
		keys,
		p256dh,
		auth,
		subscription: { endpoint: `${FAKES}/webpush/${id}`, keys: { p256dh: base64url(p256dh), auth: base64url(auth) } },
	};
}

async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: string | Uint8Array, bytes: number) {
	const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
	const infoBytes = typeof info === "string" ? new TextEncoder().encode(info) : info;
	return new Uint8Array(
		await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: infoBytes }, key, bytes * 8),
	);
}

/** The receiving side of RFC 8291 / RFC 8188, written for the test with the subscription's private key. */
async function decryptPush(b: Browser, body: Uint8Array): Promise<string> {
	const salt = body.slice(0, 16);
	const rs = new DataView(body.buffer, body.byteOffset).getUint32(16);
	const idlen = body[20] as number;
	const senderPublic = body.slice(21, 21 + idlen);
	const ciphertext = body.slice(21 + idlen);
	expect(idlen).toBe(65);
	expect(ciphertext.length).toBeLessThanOrEqual(rs);
	const sender = await crypto.subtle.importKey("raw", senderPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
	const shared = new Uint8Array(
		await crypto.subtle.deriveBits(
			{ name: "ECDH", public: sender } as unknown as SubtleCryptoDeriveKeyAlgorithm,
			b.keys.privateKey,
			256,
		),
	);
	const info = new Uint8Array([...new TextEncoder().encode("WebPush: info\0"), ...b.p256dh, ...senderPublic]);
	const ikm = await hkdf(b.auth, shared, info, 32);
	const cek = await hkdf(salt, ikm, "Content-Encoding: aes128gcm\0", 16);
	const nonce = await hkdf(salt, ikm, "Content-Encoding: nonce\0", 12);
	const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
	const padded = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, key, ciphertext));
	let end = padded.length - 1;
	while (end >= 0 && padded[end] === 0) end--;
	expect(padded[end]).toBe(2); // the last record's delimiter
	return new TextDecoder().decode(padded.slice(0, end));
}

const conversationId = () =>
	`cnv_${unique()
		.replace(/[^a-z2-7]/g, "a")
		.padEnd(20, "a")
		.slice(0, 20)}`;

function pushJob(userId: string, overrides: Partial<PushJob> = {}): PushJob {
	return { kind: "push", userId, conversationId: conversationId(), seq: 7, requestId: `req-${unique()}`, ...overrides };
}

interface Delivery {
	id: string;
	body: NotificationJob;
	attempts?: number;
}

async function runQueue(queue: string, messages: Delivery[], useEnv: Env = testEnv) {
	const batch = createMessageBatch<NotificationJob>(
		queue,
		messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts ?? 1, body: m.body })),
	);
	// getQueueResult() does not report retry delays: note them on the way.
	const delays = new Map<string, number | undefined>();
	for (const message of batch.messages) {
		const retry = message.retry.bind(message);
		message.retry = (options?: QueueRetryOptions) => {
			delays.set(message.id, options?.delaySeconds);
			retry(options);
		};
	}
	const ctx = createExecutionContext();
	await worker.queue(batch, useEnv);
	return { ...(await getQueueResult(batch, ctx)), delays };
}

const run = (messages: Delivery[], useEnv?: Env) => runQueue(MAIN_QUEUE, messages, useEnv);

async function poll<T>(what: string, read: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
	const until = Date.now() + ms;
	for (;;) {
		const value = await read();
		if (value !== undefined) return value;
		if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

/** An outbox row written straight to the table (not enqueued, so only this test's consumer run sees it). */
async function outboxRow(to: string, text?: string): Promise<string> {
	const rendered = renderEmail({
		name: "verify_email",
		displayName: "Ada",
		token: "tok-123456",
		link: "https://x.test/v",
	});
	const id = newId("email");
	await withDb((db) =>
		db.insert(outboundEmails).values({
			id,
			toEmail: to,
			template: "verify_email",
			subject: rendered.subject,
			textBody: text ?? rendered.text,
			htmlBody: rendered.html,
			requestId: "req-test",
		}),
	);
	return id;
}

const emailJob = (emailId: string): NotificationJob => ({ kind: "email", emailId, requestId: "req-test" });

// ---------------------------------------------------------------- configuration

describe("notification configuration", () => {
	const noPush = {
		FCM_SERVICE_ACCOUNT: undefined,
		APNS_KEY: undefined,
		APNS_KEY_ID: undefined,
		APNS_TEAM_ID: undefined,
		APNS_TOPIC: undefined,
		VAPID_PRIVATE_KEY: undefined,
		VAPID_PUBLIC_KEY: undefined,
		VAPID_SUBJECT: undefined,
	};
	const parse = (overrides: Record<string, string | undefined>) => parseConfig({ ...testEnv, ...overrides } as Env);

	it("names what is missing, weak or malformed, never the value", async () => {
		const cases: Array<[Record<string, string | undefined>, RegExp]> = [
			[{ VAPID_SUBJECT: undefined }, /VAPID_SUBJECT is missing/],
			[{ VAPID_SUBJECT: "ops@example.test" }, /VAPID_SUBJECT must be a mailto: or https: URL/],
			[{ VAPID_PRIVATE_KEY: "changeme" }, /VAPID_PRIVATE_KEY is too weak/],
			[{ VAPID_PUBLIC_KEY: base64url(new Uint8Array(65).fill(4)) }, /VAPID_PRIVATE_KEY is invalid|does not match/],
			[{ APNS_KEY: undefined }, /APNS_KEY is missing/],
			[{ APNS_KEY: "not a key" }, /APNS_KEY does not hold a PKCS#8 ES256 private key/],
			[{ APNS_KEY_ID: "short" }, /APNS_KEY_ID must be/],
			[{ APNS_TRANSPORT: "relay", APNS_RELAY_URL: undefined, MEDIA_NODE_URL: undefined }, /APNS_RELAY_URL is missing/],
			[{ FCM_SERVICE_ACCOUNT: "{}" }, /FCM_SERVICE_ACCOUNT lacks project_id, client_email, private_key/],
			[{ FCM_SERVICE_ACCOUNT: "not json" }, /FCM_SERVICE_ACCOUNT is not JSON/],
			[{ EMAIL_PROVIDER: "resend", EMAIL_FROM: "a@b.test" }, /EMAIL_API_KEY is missing/],
			[{ EMAIL_PROVIDER: "resend", EMAIL_FROM: "a@b.test", EMAIL_API_KEY: "changeme" }, /EMAIL_API_KEY is too weak/],
			[{ EMAIL_PROVIDER: "resend", EMAIL_API_KEY: "re_0123456789abcdefghijklmnop" }, /EMAIL_FROM is missing/],
			[{ EMAIL_PROVIDER: "smtp", EMAIL_FROM: "a@b.test" }, /SMTP_HOST is missing/],
			[{ EMAIL_PROVIDER: "smtp", EMAIL_FROM: "a@b.test", SMTP_HOST: "h", SMTP_USER: "u" }, /SMTP_PASSWORD is missing/],
			[{ EMAIL_PROVIDER: "carrier-pigeon" }, /EMAIL_PROVIDER must be resend, smtp or dev/],
			[{ ...noPush, ENVIRONMENT: "production" }, /EMAIL_PROVIDER is missing/],
			[{ ...noPush, ENVIRONMENT: "production", EMAIL_PROVIDER: "dev" }, /EMAIL_PROVIDER=dev .* refused in production/],
			[{ ENVIRONMENT: "staging", EMAIL_PROVIDER: "resend", EMAIL_FROM: "a@b.test" }, /FCM_ENDPOINT must be an https/],
			[
				{
					...noPush,
					ENVIRONMENT: "staging",
					EMAIL_PROVIDER: "smtp",
					EMAIL_FROM: "a@b.test",
					SMTP_HOST: "h",
					SMTP_TLS: "off",
				},
				/SMTP_TLS=off is refused in staging/,
			],
		];
		for (const [overrides, problem] of cases) {
			const error = await parse(overrides).then(
				() => undefined,
				(e: Error) => e,
			);
			expect(error?.message, JSON.stringify(overrides)).toMatch(problem);
			for (const [name, value] of Object.entries(overrides)) {
				if (value && value.length >= 8 && /(_KEY|PASSWORD|ACCOUNT)$/.test(name)) {
					expect(error?.message).not.toContain(value);
				}
			}
		}
	});

	it("takes the VAPID private key as a JWK too, and derives the public key from it", async () => {
		const point = fromBase64(testEnv.VAPID_PUBLIC_KEY as string);
		const jwk = {
			kty: "EC",
			crv: "P-256",
			x: base64url(point.subarray(1, 33)),
			y: base64url(point.subarray(33, 65)),
			d: testEnv.VAPID_PRIVATE_KEY,
		};
		const config = await parse({ VAPID_PRIVATE_KEY: JSON.stringify(jwk), VAPID_PUBLIC_KEY: undefined });
		expect(config.push.webpush?.publicKey).toBe(testEnv.VAPID_PUBLIC_KEY);
		const staging = await parse({
			...noPush,
			ENVIRONMENT: "staging",
			EMAIL_PROVIDER: "smtp",
			EMAIL_FROM: "SecureConnect <no-reply@example.test>",
			SMTP_HOST: "smtp.example.test",
			SMTP_USER: "mailer",
			SMTP_PASSWORD: "a-long-enough-password",
		});
		expect(staging.email).toMatchObject({ provider: "smtp", clearBodiesAfterSend: true });
		expect(staging.email.smtp).toMatchObject({ port: 587, tls: "starttls", requireTls: true });
	});
});

// ---------------------------------------------------------------- the API

describe("push subscriptions API", () => {
	it("registers fcm, apns and webpush subscriptions for own devices, lists and removes them", async () => {
		const user = await signUp();
		const deviceId = await addDevice(user);
		const token = fcmToken();
		const fcm = await subscribe(user, { kind: "fcm", token, deviceId });
		expect(fcm).toMatchObject({ kind: "fcm", deviceId, failureCount: 0, lastSuccessAt: null });
		expect(fcm.id).toMatch(/^psb_[a-z2-7]{20}$/);
		// The same token again is the same subscription.
		expect((await subscribe(user, { kind: "fcm", token, deviceId })).id).toBe(fcm.id);
		const apns = await subscribe(user, { kind: "apns", token: apnsToken(), deviceId });
		const wp = await subscribe(user, { kind: "webpush", subscription: (await browser()).subscription, deviceId });
		expect((await subscriptions(user)).map((s) => s.id).sort()).toEqual([fcm.id, apns.id, wp.id].sort());

		const other = await signUp();
		const refused = await call<ErrorReply>("/v1/push/subscriptions", {
			token: other.accessToken,
			body: { kind: "fcm", token: fcmToken(), deviceId },
		});
		expect(refused.status).toBe(404);
		expect(
			(await call(`/v1/push/subscriptions/${fcm.id}`, { method: "DELETE", token: other.accessToken })).status,
		).toBe(404);

		expect((await call(`/v1/push/subscriptions/${fcm.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(
			204,
		);
		expect((await call(`/v1/push/subscriptions/${fcm.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(
			404,
		);
		// Removing the device removes its subscriptions.
		expect((await call(`/v1/devices/${deviceId}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
		// (Removing a device also ends the session that registered it: sign in again to look.)
		expect(await subscriptions(await login(user))).toEqual([]);
	});

	it("validates bodies: kinds, token shapes, Web Push keys", async () => {
		const user = await signUp();
		const deviceId = await addDevice(user);
		const b = await browser();
		const offCurve = base64url(new Uint8Array([4, ...new Uint8Array(64).fill(1)]));
		const bad: Json[] = [
			{ kind: "fcm", deviceId },
			{ kind: "fcm", token: "short", deviceId },
			{ kind: "apns", token: "not-hex".repeat(10), deviceId },
			{ kind: "sms", token: fcmToken(), deviceId },
			{ kind: "webpush", token: fcmToken(), deviceId },
			{ kind: "webpush", subscription: { ...b.subscription, keys: { ...b.subscription.keys, auth: "abc" } }, deviceId },
			{
				kind: "webpush",
				subscription: { ...b.subscription, keys: { ...b.subscription.keys, p256dh: offCurve } },
				deviceId,
			},
			{ kind: "webpush", subscription: { ...b.subscription, endpoint: "ftp://push.example/x" }, deviceId },
			{ kind: "fcm", token: fcmToken(), deviceId: "dev_nope" },
		];
		for (const body of bad) {
			const res = await call<ErrorReply>("/v1/push/subscriptions", { token: user.accessToken, body });
			expect(res.status, JSON.stringify(body)).toBe(400);
		}
		const providers = await call<{ fcm: boolean; apns: boolean; webpush: { vapidPublicKey: string } | null }>(
			"/v1/push/providers",
			{ token: user.accessToken },
		);
		expect(providers.body).toEqual({ fcm: true, apns: true, webpush: { vapidPublicKey: testEnv.VAPID_PUBLIC_KEY } });
	});
});

// ---------------------------------------------------------------- FCM

describe("FCM HTTP v1", () => {
	it("exchanges a verified RS256 assertion for a cached access token and sends data-only payloads", async () => {
		const user = await signUp();
		const token = await subscribeFcm(user);
		const before = await tokenExchanges();
		const job = pushJob(user.id);
		const result = await run([{ id: `m-${unique()}`, body: job }]);
		expect(result.explicitAcks).toHaveLength(1);
		expect(result.retryMessages).toEqual([]);
		const call2 = pushJob(user.id, { event: "call", callId: "cal_abcdefghijklmnopqrst", seq: 0 });
		expect((await run([{ id: `m-${unique()}`, body: call2 }])).explicitAcks).toHaveLength(1);
		// One exchange at most for both sends: the token is cached until it expires.
		expect((await tokenExchanges()) - before).toBeLessThanOrEqual(1);

		const sent = await fakeRequests(token, "fcm");
		expect(sent.map((r) => [r.status, r.problems])).toEqual([
			[200, []],
			[200, []],
		]);
		const [first, second] = sent.map((r) => JSON.parse(r.body).message);
		expect(first.token).toBe(token);
		expect(first.data).toEqual({ kind: "message", conversationId: job.conversationId, seq: "7" });
		expect(first.android.priority).toBe("NORMAL");
		expect(second.data).toEqual({ kind: "call", conversationId: call2.conversationId, callId: call2.callId });
		expect(second.android.priority).toBe("HIGH");
		expect(first.notification).toBeUndefined();
		const [sub] = await subscriptions(user);
		expect(sub?.lastSuccessAt).not.toBeNull();
	});

	it("prunes a subscription FCM answers UNREGISTERED (404)", async () => {
		const user = await signUp();
		const token = await subscribeFcm(user);
		await script(token, [404]);
		const result = await run([{ id: `m-${unique()}`, body: pushJob(user.id) }]);
		expect(result.explicitAcks).toHaveLength(1);
		expect(await subscriptions(user)).toEqual([]);
	});

	it("retries a 5xx with exponential back-off and never sends a redelivered job twice", async () => {
		const user = await signUp();
		const deviceId = await addDevice(user);
		const healthy = fcmToken();
		const flaky = fcmToken();
		await subscribe(user, { kind: "fcm", token: healthy, deviceId });
		const flakySub = await subscribe(user, { kind: "fcm", token: flaky, deviceId });
		await script(flaky, [503, 500]);
		const job = pushJob(user.id);
		const id = `m-${unique()}`;

		const first = await run([{ id, body: job, attempts: 1 }]);
		expect(first.explicitAcks).toEqual([]);
		expect(first.retryMessages).toHaveLength(1);
		const delay1 = first.delays.get(id) ?? 0;
		expect(delay1).toBeGreaterThanOrEqual(RETRY_BASE_SECONDS);
		expect(delay1).toBeLessThan(RETRY_BASE_SECONDS * 2);
		expect((await subscriptions(user)).find((s) => s.id === flakySub.id)?.failureCount).toBe(1);

		const second = await run([{ id, body: job, attempts: 3 }]);
		const delay3 = second.delays.get(id) ?? 0;
		expect(delay3).toBeGreaterThanOrEqual(RETRY_BASE_SECONDS * 4);
		expect(delay3).toBeLessThan(RETRY_BASE_SECONDS * 8);

		const third = await run([{ id, body: job, attempts: 4 }]);
		expect(third.explicitAcks).toEqual([id]);
		// The queue delivers it once more anyway: nothing is sent again.
		const again = await run([{ id, body: job, attempts: 5 }]);
		expect(again.explicitAcks).toEqual([id]);

		expect((await fakeRequests(healthy, "fcm")).map((r) => r.status)).toEqual([200]);
		expect((await fakeRequests(flaky, "fcm")).map((r) => r.status)).toEqual([503, 500, 200]);
		const after = (await subscriptions(user)).find((s) => s.id === flakySub.id);
		expect(after?.failureCount).toBe(0);
		expect(after?.lastSuccessAt).not.toBeNull();
	});

	it("coalesces message pushes for one conversation within a batch into the newest", async () => {
		const user = await signUp();
		const token = await subscribeFcm(user);
		const conv = conversationId();
		const result = await run(
			[3, 5, 4].map((seq) => ({ id: `m-${unique()}`, body: pushJob(user.id, { conversationId: conv, seq }) })),
		);
		expect(result.explicitAcks).toHaveLength(3);
		const sent = await fakeRequests(token, "fcm");
		expect(sent.map((r) => JSON.parse(r.body).message.data.seq)).toEqual(["5"]);
	});

	it("skips a message push when the user blocks every sender it covers", async () => {
		const user = await signUp();
		const blocked = await register();
		const other = await register();
		const token = await subscribeFcm(user);
		expect((await call(`/v1/blocks/${blocked.id}`, { method: "PUT", token: user.accessToken })).status).toBe(204);
		const conv = conversationId();
		const job = (seq: number, senderIds?: string[]) => ({
			id: `m-${unique()}`,
			body: pushJob(user.id, { conversationId: conv, seq, ...(senderIds && { senderIds }) }),
		});

		expect((await run([job(1, [blocked.id])])).explicitAcks).toHaveLength(1);
		expect(await fakeRequests(token, "fcm")).toEqual([]);
		// Coalesced with a message from someone else, or with senders unknown: pushed.
		expect((await run([job(2, [blocked.id]), job(3, [other.id])])).explicitAcks).toHaveLength(2);
		expect((await run([job(4, [blocked.id]), job(5)])).explicitAcks).toHaveLength(2);
		expect((await run([job(6, [blocked.id, other.id])])).explicitAcks).toHaveLength(1);
		const sent = await fakeRequests(token, "fcm");
		expect(sent.map((r) => JSON.parse(r.body).message.data.seq)).toEqual(["3", "5", "6"]);
	});
});

// ---------------------------------------------------------------- APNs

describe("APNs", () => {
	it("direct transport: an ES256 provider token, the apns-* headers, no content; 410 prunes", async () => {
		const user = await signUp();
		const deviceId = await addDevice(user);
		const good = apnsToken();
		const gone = apnsToken();
		await subscribe(user, { kind: "apns", token: good, deviceId });
		await subscribe(user, { kind: "apns", token: gone, deviceId });
		await script(gone, [410]);
		const job = pushJob(user.id);
		expect((await run([{ id: `m-${unique()}`, body: job }])).explicitAcks).toHaveLength(1);
		const call2 = pushJob(user.id, { event: "call", callId: "cal_abcdefghijklmnopqrst" });
		expect((await run([{ id: `m-${unique()}`, body: call2 }])).explicitAcks).toHaveLength(1);

		const [message, ring] = await fakeRequests(good, "apns");
		expect(message?.problems).toEqual([]);
		expect(message?.status).toBe(200);
		expect(message?.transport).toBe("http1");
		expect(message?.headers).toMatchObject({
			"apns-topic": testEnv.APNS_TOPIC,
			"apns-push-type": "alert",
			"apns-priority": "10",
			"apns-collapse-id": job.conversationId,
		});
		const body = JSON.parse(message?.body ?? "{}");
		expect(body).toEqual({
			aps: { alert: { "loc-key": "PUSH_NEW_MESSAGE" }, "mutable-content": 1, sound: "default" },
			kind: "message",
			conversationId: job.conversationId,
			seq: 7,
		});
		expect(ring?.headers).toMatchObject({ "apns-topic": `${testEnv.APNS_TOPIC}.voip`, "apns-push-type": "voip" });
		expect(JSON.parse(ring?.body ?? "{}")).toMatchObject({ kind: "call", callId: call2.callId });
		// The provider token is reused, not signed per push.
		expect(ring?.headers.authorization).toBe(message?.headers.authorization);
		expect((await fakeRequests(gone, "apns")).map((r) => r.status)).toEqual([410]);
		expect((await subscriptions(user)).length).toBe(1);
	});

	it("relay transport: signed to the media node's ApnsRelay, which speaks HTTP/2 to APNs", async () => {
		const user = await signUp();
		const token = apnsToken();
		await subscribe(user, { kind: "apns", token, deviceId: await addDevice(user) });
		const relayed = { ...testEnv, APNS_TRANSPORT: "relay" } as Env;
		expect((await run([{ id: `m-${unique()}`, body: pushJob(user.id) }], relayed)).explicitAcks).toHaveLength(1);
		const [sent] = await fakeRequests(token, "apns");
		expect(sent).toMatchObject({ status: 200, problems: [], transport: "h2" });

		// A relay call signed with another secret is refused: the job is retried, nothing reaches APNs.
		const wrongSecret = { ...relayed, MEDIA_NODE_SECRET: base64url(crypto.getRandomValues(new Uint8Array(36))) } as Env;
		const refused = await run([{ id: `m-${unique()}`, body: pushJob(user.id) }], wrongSecret);
		expect(refused.retryMessages).toHaveLength(1);
		expect(await fakeRequests(token, "apns")).toHaveLength(1);
	});
});

// ---------------------------------------------------------------- Web Push

describe("Web Push", () => {
	it("encrypts per RFC 8291 and signs VAPID per RFC 8292; the browser's key decrypts it", async () => {
		const user = await signUp();
		const b = await browser();
		await subscribe(user, { kind: "webpush", subscription: b.subscription, deviceId: await addDevice(user) });
		const job = pushJob(user.id, { seq: 42 });
		expect((await run([{ id: `m-${unique()}`, body: job }])).explicitAcks).toHaveLength(1);
		const [sent] = await fakeRequests(b.id, "webpush");
		expect(sent?.status).toBe(201);
		expect(sent?.problems).toEqual([]);
		expect(sent?.headers).toMatchObject({ "content-encoding": "aes128gcm", urgency: "normal", ttl: "86400" });
		const payload = JSON.parse(await decryptPush(b, fromBase64(sent?.body ?? "")));
		expect(payload).toEqual({ kind: "message", conversationId: job.conversationId, seq: 42 });
	});

	it("prunes on 404 and 410", async () => {
		const user = await signUp();
		const deviceId = await addDevice(user);
		const a = await browser();
		const c = await browser();
		await subscribe(user, { kind: "webpush", subscription: a.subscription, deviceId });
		await subscribe(user, { kind: "webpush", subscription: c.subscription, deviceId });
		await script(a.id, [404]);
		await script(c.id, [410]);
		expect((await run([{ id: `m-${unique()}`, body: pushJob(user.id) }])).explicitAcks).toHaveLength(1);
		expect(await subscriptions(user)).toEqual([]);
	});

	it("a job that keeps failing goes to the dead-letter queue, whose consumer records it", async () => {
		const user = await signUp();
		const b = await browser();
		await subscribe(user, { kind: "webpush", subscription: b.subscription, deviceId: await addDevice(user) });
		await script(b.id, Array(10).fill(503));
		const job = pushJob(user.id);
		const id = `m-${unique()}`;
		// Six attempts (max_retries = 5): each one is retried; after the last the queue moves it to the DLQ.
		for (let attempts = 1; attempts <= 6; attempts++) {
			const result = await run([{ id, body: job, attempts }]);
			expect(result.retryMessages.map((r) => r.msgId)).toEqual([id]);
		}
		expect((await fakeRequests(b.id, "webpush")).length).toBe(6);
		const dead = await runQueue(DLQ, [{ id, body: job, attempts: 1 }]);
		expect(dead.explicitAcks).toEqual([id]);
		const [row] = await withDb((db) =>
			db.select().from(notificationDeadLetters).where(eq(notificationDeadLetters.messageId, id)),
		);
		expect(row).toMatchObject({ queue: DLQ, jobKind: "push", job });
		expect(row?.reason).toContain("Web Push 503");
		// A redelivered dead letter is recorded once.
		expect((await runQueue(DLQ, [{ id, body: job }])).explicitAcks).toEqual([id]);
	});

	it("a refusal no retry can fix (400) is dead-lettered at once", async () => {
		const user = await signUp();
		const b = await browser();
		await subscribe(user, { kind: "webpush", subscription: b.subscription, deviceId: await addDevice(user) });
		await script(b.id, [400]);
		const id = `m-${unique()}`;
		const result = await run([{ id, body: pushJob(user.id) }]);
		expect(result.explicitAcks).toEqual([id]);
		const rows = await withDb((db) =>
			db.select().from(notificationDeadLetters).where(eq(notificationDeadLetters.messageId, id)),
		);
		expect(rows[0]?.reason).toContain("Web Push 400");
	});
});

// ---------------------------------------------------------------- email

describe("email", () => {
	it("registering puts a verification email in the dev mailbox whose token verifies the address", async () => {
		const user = await register();
		const mail = await poll("the verification email to be delivered", async () => {
			const res = await call<{ emails: Array<{ template: string; text: string; sentAt: string | null }> }>(
				`/dev/mailbox?to=${encodeURIComponent(user.email)}`,
			);
			return res.body.emails.find((e) => e.template === "verify_email" && e.sentAt);
		});
		const token = codeIn(mail.text);
		expect((await call("/v1/auth/verify-email", { body: { token } })).status).toBe(204);
		const s = await login(user);
		const me = await call<{ user: { emailVerified: boolean } }>("/v1/users/me", { token: s.accessToken });
		expect(me.body.user.emailVerified).toBe(true);
	});

	it("a password reset mail arrives and its code sets a new password", async () => {
		const user = await register();
		expect((await call("/v1/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
		const mail = await poll("the reset email", async () =>
			(await mailbox(user.email)).find((m) => m.template === "reset_password"),
		);
		const password = `new ${unique()} horse battery`;
		expect((await call("/v1/auth/password/reset", { body: { token: codeIn(mail.text), password } })).status).toBe(204);
		expect((await call("/v1/auth/login", { body: { email: user.email, password } })).status).toBe(200);
		expect((await call("/v1/auth/login", { body: { email: user.email, password: user.password } })).status).toBe(401);
	});

	const resendEnv = (extra: Record<string, string | undefined> = {}) =>
		({
			...testEnv,
			EMAIL_PROVIDER: "resend",
			EMAIL_ENDPOINT: testEnv.TEST_RESEND_ENDPOINT,
			EMAIL_API_KEY: testEnv.TEST_RESEND_API_KEY,
			EMAIL_FROM: "SecureConnect <no-reply@secureconnect.test>",
			...extra,
		}) as Env;

	it("Resend: one batch request with the API key and an idempotency key; a redelivery sends nothing", async () => {
		const to = [`r1-${unique()}@example.test`, `r2-${unique()}@example.test`];
		const ids = await Promise.all(to.map((t) => outboxRow(t)));
		const messages = ids.map((emailId) => ({ id: `m-${unique()}`, body: emailJob(emailId) }));
		expect((await run(messages, resendEnv())).explicitAcks).toHaveLength(2);
		expect((await run(messages, resendEnv())).explicitAcks).toHaveLength(2);
		for (const address of to) {
			const sent = await fakeRequests(address, "resend");
			expect(sent).toHaveLength(1);
			expect(sent[0]?.headers["idempotency-key"]).toMatch(/^batch-/);
			expect(JSON.parse(sent[0]?.body ?? "{}")).toMatchObject({
				from: "SecureConnect <no-reply@secureconnect.test>",
				to: [address],
				subject: "Confirm your email address",
			});
		}
		const rows = await withDb((db) =>
			db
				.select()
				.from(outboundEmails)
				.where(eq(outboundEmails.id, ids[0] as string)),
		);
		expect(rows[0]?.sentAt).not.toBeNull();
		expect(rows[0]?.textBody).toContain("tok-123456"); // kept outside staging/production
	});

	it("Resend in staging: the body columns are cleared once sent; a 422 fails the email into the dead letters", async () => {
		const staging = {
			...resendEnv({ EMAIL_ENDPOINT: undefined, ENVIRONMENT: "staging" }),
			// Staging wants https provider endpoints; the push fakes are http.
			FCM_SERVICE_ACCOUNT: undefined,
			APNS_KEY: undefined,
			APNS_KEY_ID: undefined,
			APNS_TEAM_ID: undefined,
			APNS_TOPIC: undefined,
			VAPID_PRIVATE_KEY: undefined,
			VAPID_PUBLIC_KEY: undefined,
			VAPID_SUBJECT: undefined,
		} as Env;
		const to = `staging-${unique()}@example.test`;
		const id = await outboxRow(to);
		const provider = new ResendProvider({
			endpoint: testEnv.TEST_RESEND_ENDPOINT,
			apiKey: testEnv.TEST_RESEND_API_KEY,
			timeoutMs: 5000,
		});
		const batch = createMessageBatch<NotificationJob>(MAIN_QUEUE, [
			{ id: `m-${unique()}`, timestamp: new Date(), attempts: 1, body: emailJob(id) },
		]);
		const ctx = createExecutionContext();
		await consumeNotifications(batch, staging, { emailProvider: provider });
		expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
		const [row] = await withDb((db) => db.select().from(outboundEmails).where(eq(outboundEmails.id, id)));
		expect(row).toMatchObject({ toEmail: to, template: "verify_email", textBody: "", htmlBody: "" });
		expect(row?.sentAt).not.toBeNull();
		expect((await fakeRequests(to, "resend"))[0]?.body).toContain("tok-123456");

		const refusedTo = `refused-${unique()}@example.test`;
		await script(refusedTo, [422]);
		const refusedId = await outboxRow(refusedTo);
		const messageId = `m-${unique()}`;
		expect((await run([{ id: messageId, body: emailJob(refusedId) }], resendEnv())).explicitAcks).toEqual([messageId]);
		const [failed] = await withDb((db) => db.select().from(outboundEmails).where(eq(outboundEmails.id, refusedId)));
		expect(failed?.failed).toBe(true);
		const dead = await withDb((db) =>
			db.select().from(notificationDeadLetters).where(eq(notificationDeadLetters.messageId, messageId)),
		);
		expect(dead[0]?.reason).toContain("Resend 422");
	});

	it("SMTP over cloudflare:sockets: AUTH, MAIL/RCPT/DATA, dot-stuffing, multipart/alternative; 4xx retries, 5xx fails", async () => {
		const smtpEnv = {
			...testEnv,
			EMAIL_PROVIDER: "smtp",
			EMAIL_FROM: "SecureConnect <no-reply@secureconnect.test>",
			SMTP_HOST: "127.0.0.1",
			SMTP_PORT: testEnv.TEST_SMTP_PORT,
			SMTP_USER: testEnv.TEST_SMTP_USER,
			SMTP_PASSWORD: testEnv.TEST_SMTP_PASSWORD,
		} as Env;
		const to = `smtp-${unique()}@example.test`;
		const text = "Hello Zoë,\n.hidden line that starts with a dot\n..two dots\n.\nend = fin";
		const id = await outboxRow(to, text);
		const tempfail = await outboxRow(`tempfail-${unique()}@example.test`);
		const rejected = await outboxRow(`reject-${unique()}@example.test`);
		const result = await run(
			[id, tempfail, rejected].map((emailId) => ({ id: emailId, body: emailJob(emailId) })),
			smtpEnv,
		);
		expect(result.explicitAcks.sort()).toEqual([id, rejected].sort());
		expect(result.retryMessages.map((r) => r.msgId)).toEqual([tempfail]);

		const [sent] = await fakeRequests(to, "smtp");
		expect(sent?.headers["x-mail-from"]).toBe("no-reply@secureconnect.test");
		expect(Number(sent?.headers["x-stuffed-lines"])).toBeGreaterThanOrEqual(3);
		const data = sent?.body ?? "";
		expect(data).toMatch(/^From: SecureConnect <no-reply@secureconnect.test>\r\n/m);
		expect(data).toContain(`To: ${to}`);
		expect(data).toContain("Subject: Confirm your email address");
		const boundary = /Content-Type: multipart\/alternative; boundary="([^"]+)"/.exec(data)?.[1];
		expect(boundary).toBeTruthy();
		const parts = data.split(`--${boundary}`).slice(1, -1);
		expect(parts.map((p) => /Content-Type: (\S+);/.exec(p)?.[1])).toEqual(["text/plain", "text/html"]);
		const decodeQp = (part: string) => {
			const body = part.split("\r\n\r\n").slice(1).join("\r\n\r\n").replace(/\r\n$/, "");
			const bytes = body
				.replace(/=\r\n/g, "")
				.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
			return new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
		};
		expect(decodeQp(parts[0] as string)).toBe(text.replaceAll("\n", "\r\n"));
		expect(decodeQp(parts[1] as string)).toContain("<code>tok-123456</code>");
		const [failed] = await withDb((db) => db.select().from(outboundEmails).where(eq(outboundEmails.id, rejected)));
		expect(failed?.failed).toBe(true);
	});
});

// ---------------------------------------------------------------- no plaintext

describe("an offline conversation member", () => {
	it("gets a push that says where to look and nothing of what was said", async () => {
		const alice = await signUp();
		const bob = await signUp();
		const deviceId = await addDevice(bob);
		const b = await browser();
		const token = fcmToken();
		await subscribe(bob, { kind: "webpush", subscription: b.subscription, deviceId });
		await subscribe(bob, { kind: "fcm", token, deviceId });
		const conv = await call<{ conversation: { id: string } }>("/v1/conversations", {
			token: alice.accessToken,
			body: { type: "direct", memberIds: [bob.id] },
		});
		const id = conv.body.conversation.id;
		const canary = `CANARY-${unique()}`;
		const ciphertext = b64(`mls-ciphertext ${canary} ${"x".repeat(40)}`);
		const sent = await call<{ message: { seq: number } }>(`/v1/conversations/${id}/messages`, {
			token: alice.accessToken,
			body: { clientId: `c-${unique()}`, ciphertext },
		});
		expect(sent.status).toBe(201);
		const seq = sent.body.message.seq;

		// Bob has no socket: his user channel enqueues a push job, the queue consumer delivers it.
		const [pushed] = await poll("the web push", async () => {
			const r = await fakeRequests(b.id, "webpush");
			return r.length > 0 ? r : undefined;
		});
		expect(pushed?.problems).toEqual([]);
		const plaintext = await decryptPush(b, fromBase64(pushed?.body ?? ""));
		expect(JSON.parse(plaintext)).toEqual({ kind: "message", conversationId: id, seq });
		const [fcm] = await poll("the fcm push", async () => {
			const r = await fakeRequests(token, "fcm");
			return r.length > 0 ? r : undefined;
		});
		expect(JSON.parse(fcm?.body ?? "{}").message.data).toEqual({
			kind: "message",
			conversationId: id,
			seq: String(seq),
		});
		for (const text of [plaintext, JSON.stringify(pushed?.headers), fcm?.body ?? "", JSON.stringify(fcm?.headers)]) {
			expect(text).not.toContain(canary);
			expect(text).not.toContain(ciphertext);
			expect(text).not.toContain(ciphertext.slice(8, 40));
		}
		// The job itself carried only ids: its delivery records name the conversation, seq and user.
		const deliveries = await withDb((db) =>
			db
				.select()
				.from(notificationDeliveries)
				.where(sql`${notificationDeliveries.jobId} = ${`msg:${id}:${seq}:${bob.id}`}`),
		);
		expect(deliveries.map((d) => d.status)).toEqual(["sent", "sent"]);
	});

	it("gets no push for a group message from a sender they block; others' messages still push", async () => {
		const sender = await signUp();
		const other = await signUp();
		const bob = await signUp();
		const token = await subscribeFcm(bob);
		const id = await createGroup(other.accessToken, [sender.id, bob.id]);
		expect((await call(`/v1/blocks/${sender.id}`, { method: "PUT", token: bob.accessToken })).status).toBe(204);
		const send = async (user: SignedIn) => {
			const res = await call<{ message: { seq: number } }>(`/v1/conversations/${id}/messages`, {
				token: user.accessToken,
				body: { clientId: `c-${unique()}`, ciphertext: b64("ciphertext") },
			});
			// The group's ciphertext still reaches every member.
			expect(res.status).toBe(201);
			return res.body.message.seq;
		};
		const blockedSeq = await send(sender);
		// Past the queue's batch window, so the consumer does not fold the two pushes into one.
		await new Promise((resolve) => setTimeout(resolve, 1_500));
		const seq = await send(other);
		await poll("the fcm push", async () => ((await fakeRequests(token, "fcm")).length > 0 ? true : undefined));
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		const pushed = (await fakeRequests(token, "fcm")).map((r) => JSON.parse(r.body).message.data.seq);
		expect(pushed).toEqual([String(seq)]);
		expect(pushed).not.toContain(String(blockedSeq));
		const history = await call<{ messages: Array<{ seq: number }> }>(`/v1/conversations/${id}/messages`, {
			token: bob.accessToken,
		});
		expect(history.body.messages.map((m) => m.seq)).toEqual([blockedSeq, seq]);
	});
});
