// Local stand-ins for the push and email providers: `npm run dev` sends every
// push to them (scripts/dev.ts), and the workers tests (workers/test/global-setup.ts,
// as tests inside workerd cannot listen on ports) and the fuzzer use them too.
// Each checks what the real service checks and refuses what it would refuse:
//   FCM: the RS256 assertion against the service account's public key, its
//        kid/iss/scope/aud/iat/exp, then the bearer token on messages:send;
//   APNs: the ES256 provider JWT (kid, iss, iat) and the apns-* headers, over
//        HTTP/1.1 (direct transport) and HTTP/2 (behind the real ApnsRelay);
//   Web Push: the VAPID JWT against the VAPID public key with aud = origin;
//        the aes128gcm body is kept for the test to decrypt with its key;
//   Resend: the API key and the Idempotency-Key; SMTP: AUTH, dot-stuffing.
// What they received: GET <url>/_control/requests (?provider=, ?target=).
// Every key is generated here, per run; nothing secret is committed.
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, randomUUID, verify } from "node:crypto";
import http, { type IncomingHttpHeaders } from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { ApnsRelay } from "../../media-node/src/ApnsRelay.ts";

export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
export const APNS_KEY_ID = "KEY1234567";
export const APNS_TEAM_ID = "TEAM123456";
export const APNS_TOPIC = "com.secureconnect.test";

export interface Recorded {
	provider: "fcm" | "apns" | "webpush" | "resend" | "smtp";
	target: string;
	status: number;
	/** Empty when everything the provider checks was right. */
	problems: string[];
	headers: Record<string, string>;
	/** JSON bodies as text; Web Push and SMTP data base64 / raw text. */
	body: string;
	transport?: "http1" | "h2";
	at: number;
}

export interface FakeProviders {
	url: string;
	bindings: Record<string, string>;
	close(): Promise<void>;
}

const b64url = (buf: Buffer) => buf.toString("base64url");

function decodeJwt(jwt: string): {
	header: Record<string, unknown>;
	claims: Record<string, unknown>;
	signed: Buffer;
	signature: Buffer;
} {
	const [h, p, s] = jwt.split(".");
	if (!h || !p || s === undefined) throw new Error("not a compact JWT");
	return {
		header: JSON.parse(Buffer.from(h, "base64url").toString("utf8")) as Record<string, unknown>,
		claims: JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>,
		signed: Buffer.from(`${h}.${p}`),
		signature: Buffer.from(s, "base64url"),
	};
}

function flatHeaders(headers: IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [k, v] of Object.entries(headers)) if (typeof v === "string") out[k] = v;
	return out;
}

async function listen(server: http.Server | http2.Http2Server | net.Server): Promise<number> {
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return (server.address() as AddressInfo).port;
}

export async function startFakeProviders(options: { mediaNodeSecret: string }): Promise<FakeProviders> {
	const now = () => Math.floor(Date.now() / 1000);
	const records: Recorded[] = [];
	const scripts = new Map<string, number[]>();
	const nextScripted = (target: string): number | undefined => scripts.get(target)?.shift();
	let tokenExchanges = 0;

	// ------------------------------------------------------------ keys
	const fcmKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });
	const apnsKeys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
	const vapidKeys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
	const vapidJwk = vapidKeys.privateKey.export({ format: "jwk" }) as { x: string; y: string; d: string };
	const vapidPublic = b64url(
		Buffer.concat([Buffer.from([4]), Buffer.from(vapidJwk.x, "base64url"), Buffer.from(vapidJwk.y, "base64url")]),
	);
	const resendKey = `re_${randomBytes(24).toString("base64url")}`;
	const smtpUser = "mailer@secureconnect.test";
	const smtpPassword = randomBytes(18).toString("base64url");
	const accessTokens = new Map<string, number>();

	const main = http.createServer();
	const port = await listen(main);
	const url = `http://127.0.0.1:${port}`;
	const serviceAccount = {
		type: "service_account",
		project_id: "secureconnect-test",
		private_key_id: randomBytes(20).toString("hex"),
		private_key: fcmKeys.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
		client_email: "push@secureconnect-test.iam.gserviceaccount.com",
		client_id: "1234567890",
		token_uri: `${url}/fcm/token`,
	};

	// ------------------------------------------------------------ FCM
	function fcmToken(body: string): { status: number; body: unknown } {
		const problems: string[] = [];
		const form = new URLSearchParams(body);
		if (form.get("grant_type") !== JWT_BEARER) problems.push("grant_type");
		try {
			const jwt = decodeJwt(form.get("assertion") ?? "");
			if (jwt.header.alg !== "RS256") problems.push("alg");
			if (jwt.header.kid !== serviceAccount.private_key_id) problems.push("kid");
			if (!verify("RSA-SHA256", jwt.signed, fcmKeys.publicKey, jwt.signature)) problems.push("signature");
			const c = jwt.claims;
			if (c.iss !== serviceAccount.client_email) problems.push("iss");
			if (c.aud !== serviceAccount.token_uri) problems.push("aud");
			if (
				!String(c.scope ?? "")
					.split(" ")
					.includes(FCM_SCOPE)
			)
				problems.push("scope");
			const iat = Number(c.iat);
			const exp = Number(c.exp);
			if (!(Math.abs(iat - now()) < 300)) problems.push("iat");
			if (!(exp > now() && exp - iat <= 3600)) problems.push("exp");
		} catch {
			problems.push("assertion");
		}
		if (problems.length > 0) {
			return {
				status: 400,
				body: { error: "invalid_grant", error_description: `bad assertion: ${problems.join(",")}` },
			};
		}
		tokenExchanges++;
		const token = `ya29.fake-${randomBytes(16).toString("hex")}`;
		accessTokens.set(token, now() + 3599);
		return { status: 200, body: { access_token: token, expires_in: 3599, token_type: "Bearer" } };
	}

	const fcmError = (status: number, code: string, errorCode?: string) => ({
		error: {
			code: status,
			message: code,
			status: code,
			...(errorCode && {
				details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }],
			}),
		},
	});

	function fcmSend(project: string, headers: IncomingHttpHeaders, body: string): { status: number; body: unknown } {
		const problems: string[] = [];
		const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? "")?.[1];
		const expires = bearer ? accessTokens.get(bearer) : undefined;
		if (!expires || expires < now()) {
			record("fcm", "(unauthenticated)", 401, ["access token"], headers, body);
			return { status: 401, body: fcmError(401, "UNAUTHENTICATED") };
		}
		if (project !== serviceAccount.project_id) problems.push("project");
		let token = "";
		try {
			const message = (JSON.parse(body) as { message?: Record<string, unknown> }).message ?? {};
			token = String(message.token ?? "");
			if (!token) problems.push("message.token");
			for (const [k, v] of Object.entries((message.data ?? {}) as Record<string, unknown>)) {
				if (typeof v !== "string") problems.push(`data.${k} must be a string`);
			}
		} catch {
			problems.push("json");
		}
		if (problems.length > 0) {
			record("fcm", token, 400, problems, headers, body);
			return { status: 400, body: fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT") };
		}
		const scripted = nextScripted(token);
		const status = scripted ?? 200;
		record("fcm", token, status, [], headers, body);
		if (status === 404) return { status, body: fcmError(404, "NOT_FOUND", "UNREGISTERED") };
		if (status === 503) return { status, body: fcmError(503, "UNAVAILABLE", "UNAVAILABLE") };
		if (status === 429) return { status, body: fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED") };
		if (status === 400) return { status, body: fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT") };
		if (status !== 200) return { status, body: fcmError(status, "INTERNAL", "INTERNAL") };
		return { status, body: { name: `projects/${project}/messages/${randomUUID()}` } };
	}

	// ------------------------------------------------------------ APNs
	function apns(
		path: string,
		headers: IncomingHttpHeaders | http2.IncomingHttpHeaders,
		body: string,
		transport: "http1" | "h2",
	): { status: number; body: unknown; headers?: Record<string, string> } {
		const token = /^\/3\/device\/([0-9a-fA-F]+)$/.exec(path)?.[1] ?? "";
		const problems: string[] = [];
		const reject = (status: number, reason: string) => {
			record("apns", token, status, [...problems, reason], headers, body, transport);
			return { status, body: { reason } };
		};
		if (!token) return reject(404, "BadPath");
		const jwt = /^bearer (.+)$/.exec(String(headers.authorization ?? ""))?.[1];
		if (!jwt) return reject(403, "MissingProviderToken");
		try {
			const t = decodeJwt(jwt);
			if (t.header.alg !== "ES256") problems.push("alg");
			if (t.header.kid !== APNS_KEY_ID) problems.push("kid");
			if (t.claims.iss !== APNS_TEAM_ID) problems.push("iss");
			const iat = Number(t.claims.iat);
			if (!(iat <= now() + 60 && now() - iat < 3600)) problems.push("iat");
			if (!verify("sha256", t.signed, { key: apnsKeys.publicKey, dsaEncoding: "ieee-p1363" }, t.signature)) {
				problems.push("signature");
			}
		} catch {
			problems.push("jwt");
		}
		if (problems.length > 0) return reject(403, "InvalidProviderToken");
		const pushType = String(headers["apns-push-type"] ?? "");
		const topic = String(headers["apns-topic"] ?? "");
		const priority = String(headers["apns-priority"] ?? "");
		if (!["alert", "background", "voip", "location", "complication", "fileprovider", "mdm"].includes(pushType)) {
			return reject(400, "InvalidPushType");
		}
		if (!topic) return reject(400, "MissingTopic");
		if (topic !== (pushType === "voip" ? `${APNS_TOPIC}.voip` : APNS_TOPIC)) return reject(400, "TopicDisallowed");
		if (!["5", "10"].includes(priority) || (pushType === "background" && priority !== "5")) {
			return reject(400, "BadPriority");
		}
		if (Buffer.byteLength(body) > (pushType === "voip" ? 5120 : 4096)) return reject(413, "PayloadTooLarge");
		try {
			const parsed = JSON.parse(body) as { aps?: unknown };
			if (typeof parsed.aps !== "object" || parsed.aps === null) return reject(400, "PayloadEmpty");
		} catch {
			return reject(400, "BadPayload");
		}
		const status = nextScripted(token) ?? 200;
		record("apns", token, status, [], headers, body, transport);
		if (status === 200) return { status, body: undefined, headers: { "apns-id": randomUUID() } };
		if (status === 410) return { status, body: { reason: "Unregistered", timestamp: Date.now() } };
		if (status === 429) return { status, body: { reason: "TooManyRequests" } };
		return { status, body: { reason: status >= 500 ? "ServiceUnavailable" : "BadDeviceToken" } };
	}

	// ------------------------------------------------------------ Web Push
	const vapidVerifier: KeyObject = createPublicKey({
		key: { kty: "EC", crv: "P-256", x: vapidJwk.x, y: vapidJwk.y },
		format: "jwk",
	});
	function webpush(id: string, headers: IncomingHttpHeaders, body: Buffer): { status: number; body: unknown } {
		const problems: string[] = [];
		if (headers["content-encoding"] !== "aes128gcm") problems.push("content-encoding");
		if (!/^\d+$/.test(String(headers.ttl ?? ""))) problems.push("ttl");
		const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(String(headers.authorization ?? ""));
		if (!auth) problems.push("authorization");
		else {
			if (auth[2] !== vapidPublic) problems.push("k");
			try {
				const t = decodeJwt(auth[1] as string);
				if (t.header.alg !== "ES256") problems.push("alg");
				if (!verify("sha256", t.signed, { key: vapidVerifier, dsaEncoding: "ieee-p1363" }, t.signature)) {
					problems.push("signature");
				}
				if (t.claims.aud !== url) problems.push("aud");
				const exp = Number(t.claims.exp);
				if (!(exp > now() && exp <= now() + 86_400)) problems.push("exp");
				if (!/^(mailto:|https:)/.test(String(t.claims.sub ?? ""))) problems.push("sub");
			} catch {
				problems.push("jwt");
			}
		}
		// RFC 8188 header: salt(16) rs(4) idlen(1)=65 keyid(65), then at least one tag.
		if (body.length < 21 + 65 + 17 || body[20] !== 65 || body.readUInt32BE(16) < 18) problems.push("aes128gcm header");
		if (problems.length > 0) {
			record("webpush", id, 403, problems, headers, body.toString("base64"));
			return { status: 403, body: { error: problems.join(",") } };
		}
		const status = nextScripted(id) ?? 201;
		record("webpush", id, status, [], headers, body.toString("base64"));
		return { status, body: status === 201 ? undefined : { error: `scripted ${status}` } };
	}

	// ------------------------------------------------------------ Resend
	const idempotent = new Map<string, { status: number; body: unknown }>();
	function resend(path: string, headers: IncomingHttpHeaders, body: string): { status: number; body: unknown } {
		if (headers.authorization !== `Bearer ${resendKey}`) {
			return { status: 401, body: { name: "missing_api_key", message: "bad key", statusCode: 401 } };
		}
		const key = String(headers["idempotency-key"] ?? "");
		const seen = idempotent.get(key);
		if (key && seen) return seen;
		let emails: Array<Record<string, unknown>>;
		try {
			const parsed = JSON.parse(body) as unknown;
			emails = path.endsWith("/batch")
				? (parsed as Array<Record<string, unknown>>)
				: [parsed as Record<string, unknown>];
		} catch {
			return { status: 400, body: { name: "validation_error", message: "json" } };
		}
		for (const e of emails) {
			const to = Array.isArray(e.to) ? e.to.map(String) : [String(e.to ?? "")];
			const problems = [
				...(typeof e.from === "string" && e.from.includes("@") ? [] : ["from"]),
				...(to.every((t) => t.includes("@")) ? [] : ["to"]),
				...(typeof e.subject === "string" && e.subject ? [] : ["subject"]),
				...(typeof e.html === "string" || typeof e.text === "string" ? [] : ["body"]),
				...(key ? [] : ["idempotency-key"]),
			];
			const scripted = nextScripted(to[0] ?? "");
			if (problems.length > 0 || scripted) {
				const status = scripted ?? 422;
				record("resend", to[0] ?? "", status, problems, headers, JSON.stringify(e));
				return { status, body: { name: status === 422 ? "validation_error" : "application_error", message: "no" } };
			}
		}
		const ids = emails.map(() => randomUUID());
		emails.forEach((e, i) => {
			const to = Array.isArray(e.to) ? String(e.to[0]) : String(e.to);
			record("resend", to, 200, [], { ...flatHeaders(headers), "x-fake-id": ids[i] as string }, JSON.stringify(e));
		});
		const reply = { status: 200, body: path.endsWith("/batch") ? { data: ids.map((id) => ({ id })) } : { id: ids[0] } };
		if (key) idempotent.set(key, reply);
		return reply;
	}

	// ------------------------------------------------------------ recording and control
	function record(
		provider: Recorded["provider"],
		target: string,
		status: number,
		problems: string[],
		headers: IncomingHttpHeaders | http2.IncomingHttpHeaders | Record<string, string>,
		body: string,
		transport?: Recorded["transport"],
	): void {
		records.push({
			provider,
			target,
			status,
			problems,
			headers: flatHeaders(headers),
			body,
			...(transport && { transport }),
			at: Date.now(),
		});
	}

	const readBody = (req: http.IncomingMessage | http2.Http2ServerRequest) =>
		new Promise<Buffer>((resolve, reject) => {
			const chunks: Buffer[] = [];
			req.on("data", (c: Buffer) => chunks.push(c));
			req.on("end", () => resolve(Buffer.concat(chunks)));
			req.on("error", reject);
		});

	const reply = (
		res: http.ServerResponse | http2.Http2ServerResponse,
		out: { status: number; body: unknown; headers?: Record<string, string> },
	) => {
		const text = out.body === undefined ? "" : JSON.stringify(out.body);
		(res as http.ServerResponse).writeHead(out.status, { "content-type": "application/json", ...out.headers });
		res.end(text);
	};

	main.on("request", async (req, res) => {
		try {
			const path = new URL(req.url ?? "/", url).pathname;
			const body = await readBody(req);
			if (path === "/_control/script" && req.method === "POST") {
				const { target, statuses } = JSON.parse(body.toString("utf8")) as { target: string; statuses: number[] };
				scripts.set(target, [...statuses]);
				return reply(res, { status: 204, body: undefined });
			}
			if (path === "/_control/requests") {
				const q = new URL(req.url ?? "/", url).searchParams;
				const target = q.get("target");
				const provider = q.get("provider");
				return reply(res, {
					status: 200,
					body: {
						requests: records.filter((r) => (!target || r.target === target) && (!provider || r.provider === provider)),
					},
				});
			}
			if (path === "/_control/stats") return reply(res, { status: 200, body: { tokenExchanges } });
			if (req.method !== "POST") return reply(res, { status: 405, body: { error: "method" } });
			if (path === "/fcm/token") return reply(res, fcmToken(body.toString("utf8")));
			const fcm = /^\/fcm\/v1\/projects\/([^/]+)\/messages:send$/.exec(path);
			if (fcm) return reply(res, fcmSend(decodeURIComponent(fcm[1] as string), req.headers, body.toString("utf8")));
			if (path.startsWith("/apns/")) {
				return reply(res, apns(path.slice("/apns".length), req.headers, body.toString("utf8"), "http1"));
			}
			const wp = /^\/webpush\/([A-Za-z0-9_-]+)$/.exec(path);
			if (wp) return reply(res, webpush(wp[1] as string, req.headers, body));
			if (path === "/resend/emails" || path === "/resend/emails/batch") {
				return reply(res, resend(path, req.headers, body.toString("utf8")));
			}
			return reply(res, { status: 404, body: { error: "no such fake" } });
		} catch (error) {
			return reply(res, { status: 500, body: { error: String(error) } });
		}
	});

	// APNs over HTTP/2 (cleartext), reached through the media node's relay.
	const h2 = http2.createServer(async (req, res) => {
		const body = await readBody(req);
		reply(res, apns(req.url, req.headers, body.toString("utf8"), "h2"));
	});
	const h2Port = await listen(h2);
	const relay = new ApnsRelay({ secret: options.mediaNodeSecret, origin: `http://127.0.0.1:${h2Port}` });
	const relayServer = http.createServer((req, res) => {
		if (!relay.handle(req, res)) reply(res, { status: 404, body: { error: "not_found" } });
	});
	const relayPort = await listen(relayServer);

	// ------------------------------------------------------------ SMTP
	const smtp = net.createServer((socket) => {
		let authed = false;
		let buffer = "";
		let mode: "command" | "data" | "login-user" | "login-pass" = "command";
		let loginUser = "";
		let from = "";
		let rcpt: string[] = [];
		let data: string[] = [];
		let stuffed = 0;
		const say = (line: string) => socket.write(`${line}\r\n`);
		say("220 fake-smtp ESMTP ready");
		socket.on("error", () => socket.destroy());
		socket.on("data", (chunk) => {
			buffer += chunk.toString("utf8");
			for (;;) {
				const end = buffer.indexOf("\r\n");
				if (end < 0) return;
				const line = buffer.slice(0, end);
				buffer = buffer.slice(end + 2);
				if (mode === "data") {
					if (line === ".") {
						mode = "command";
						for (const to of rcpt) {
							record(
								"smtp",
								to,
								250,
								[],
								{ "x-mail-from": from, "x-stuffed-lines": String(stuffed) },
								data.join("\r\n"),
							);
						}
						say("250 2.0.0 queued");
						continue;
					}
					if (line.startsWith(".")) stuffed++;
					data.push(line.startsWith(".") ? line.slice(1) : line);
					continue;
				}
				if (mode === "login-user") {
					loginUser = Buffer.from(line, "base64").toString("utf8");
					mode = "login-pass";
					say("334 UGFzc3dvcmQ6");
					continue;
				}
				if (mode === "login-pass") {
					mode = "command";
					authed = loginUser === smtpUser && Buffer.from(line, "base64").toString("utf8") === smtpPassword;
					say(authed ? "235 2.7.0 ok" : "535 5.7.8 bad credentials");
					continue;
				}
				const [verb = "", ...args] = line.split(" ");
				const rest = args.join(" ");
				switch (verb.toUpperCase()) {
					case "EHLO":
						say("250-fake-smtp greets you");
						say("250-8BITMIME");
						say("250-AUTH PLAIN LOGIN");
						say("250 SIZE 10485760");
						break;
					case "AUTH": {
						const [mech, initial] = args;
						if (mech?.toUpperCase() === "PLAIN" && initial) {
							const [, user, pass] = Buffer.from(initial, "base64").toString("utf8").split("\0");
							authed = user === smtpUser && pass === smtpPassword;
							say(authed ? "235 2.7.0 ok" : "535 5.7.8 bad credentials");
						} else if (mech?.toUpperCase() === "LOGIN") {
							mode = "login-user";
							say("334 VXNlcm5hbWU6");
						} else say("504 5.5.4 unsupported");
						break;
					}
					case "MAIL":
						if (!authed) say("530 5.7.0 authentication required");
						else {
							from = /<([^>]*)>/.exec(rest)?.[1] ?? "";
							rcpt = [];
							say("250 2.1.0 ok");
						}
						break;
					case "RCPT": {
						const to = /<([^>]*)>/.exec(rest)?.[1] ?? "";
						if (to.includes("reject")) say("550 5.1.1 no such user");
						else if (to.includes("tempfail")) say("451 4.3.0 try later");
						else {
							rcpt.push(to);
							say("250 2.1.5 ok");
						}
						break;
					}
					case "DATA":
						if (rcpt.length === 0) say("554 5.5.1 no valid recipients");
						else {
							mode = "data";
							data = [];
							stuffed = 0;
							say("354 end with <CRLF>.<CRLF>");
						}
						break;
					case "RSET":
						rcpt = [];
						say("250 2.0.0 ok");
						break;
					case "NOOP":
						say("250 2.0.0 ok");
						break;
					case "QUIT":
						say("221 2.0.0 bye");
						socket.end();
						break;
					default:
						say("502 5.5.2 unknown command");
				}
			}
		});
	});
	const smtpPort = await listen(smtp);

	return {
		url,
		bindings: {
			FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount),
			FCM_ENDPOINT: `${url}/fcm`,
			APNS_KEY: apnsKeys.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
			APNS_KEY_ID,
			APNS_TEAM_ID,
			APNS_TOPIC,
			APNS_ENDPOINT: `${url}/apns`,
			APNS_TRANSPORT: "direct",
			APNS_RELAY_URL: `http://127.0.0.1:${relayPort}`,
			VAPID_PUBLIC_KEY: vapidPublic,
			VAPID_PRIVATE_KEY: vapidJwk.d,
			VAPID_SUBJECT: "mailto:push@secureconnect.test",
			NOTIFICATION_TIMEOUT_MS: "5000",
			// Not read by the api: the tests use them to point an env copy at the email fakes.
			TEST_FAKES_URL: url,
			TEST_RESEND_ENDPOINT: `${url}/resend`,
			TEST_RESEND_API_KEY: resendKey,
			TEST_SMTP_PORT: String(smtpPort),
			TEST_SMTP_USER: smtpUser,
			TEST_SMTP_PASSWORD: smtpPassword,
		},
		close: async () => {
			relay.close();
			await Promise.all(
				[main, relayServer, h2, smtp].map(
					(s) =>
						new Promise<void>((resolve) => {
							if ("closeAllConnections" in s) s.closeAllConnections();
							s.close(() => resolve());
						}),
				),
			);
		},
	};
}
