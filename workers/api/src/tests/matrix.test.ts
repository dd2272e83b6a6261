// Every documented operation, driven from the OpenAPI document itself (issue #11
// item 5): an authorization matrix that a new route cannot slip past. The
// fuzzer that feeds every operation generated requests is tests/fuzz (Node,
// against wrangler dev, with a database fingerprint behind every refusal).
import { env, SELF } from "cloudflare:test";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ACCESS_TOKEN_AUDIENCE } from "../auth/access-token.ts";
import { type Config, loadConfig } from "../config/config.ts";
import { TOKEN_ALGORITHM } from "../config/signing-keys.ts";
import { call, type SignedIn, signUp } from "./helpers.ts";
import { nodeHeartbeat } from "./media-nodes.ts";
import { envelopeProblem, fillPath, type OpenApiDocument, type Operation, operationsOf } from "./openapi-operations.ts";
import { createGroup } from "./sockets.ts";

let doc: OpenApiDocument;
let config: Config;

interface Sent {
	status: number;
	text: string;
}

async function send(
	op: { method: string },
	url: string,
	options: { token?: string | undefined; body?: string | Uint8Array | undefined },
): Promise<Sent> {
	const res = await SELF.fetch(`http://api.test${url}`, {
		method: op.method,
		headers: {
			"cf-connecting-ip": "10.251.0.1",
			...(options.token && { authorization: `Bearer ${options.token}` }),
			...(options.body !== undefined && {
				"content-type": typeof options.body === "string" ? "application/json" : "application/octet-stream",
			}),
		},
		...(options.body !== undefined && { body: options.body }),
	});
	return { status: res.status, text: await res.text() };
}

/** Every 4xx carries the standard envelope. */
function expectEnvelope(sent: Sent, what: string) {
	expect(envelopeProblem(sent.text), `${what} → ${sent.status} ${sent.text.slice(0, 300)}`).toBeUndefined();
}

beforeAll(async () => {
	doc = (await (await SELF.fetch("http://api.test/openapi.json")).json()) as OpenApiDocument;
	config = await loadConfig(env);
});

// ───────────────────────────── authorization matrix ─────────────────────────────

type Denial = "otherUser" | "nonMember" | "blocked";

/** One request: path parameter values, query string, JSON body. */
interface Probe {
	params?: Record<string, string>;
	query?: string;
	body?: unknown;
	/** A lookup may refuse by answering 200 with this list empty (no existence leak) instead of 403/404. */
	emptyList?: string;
}

interface World {
	/** Owns every resource below. */
	a: SignedIn;
	/** The other user: not a member of a's group, blocked by a. */
	b: SignedIn;
	/** a's friend, co-member of a's group. */
	c: SignedIn;
	group: string;
	/** a–b direct conversation, made before a blocked b. */
	direct: string;
	/** b's own group with c, to which b tries to add a (the blocker). */
	bGroup: string;
	file: string;
	device: string;
	call: string;
	friendRequest: string;
	subscription: string;
}

/**
 * How the matrix reaches each secured operation. `base` is a request about a's
 * resources (sent with no / expired / revoked tokens); each denial case is a
 * request b makes and must be refused (403 or 404). An operation without denial
 * cases says why in `none`.
 */
type Entry = (w: World) => { base: Probe } & Partial<Record<Denial, Probe>> & { none?: string };

const own = "acts on the caller's own account only: no other user's resource is named";
const MATRIX: Record<string, Entry> = {
	"POST /v1/auth/verify-email/resend": () => ({ base: {}, none: own }),
	"POST /v1/auth/logout": () => ({ base: {}, none: own }),
	"POST /v1/auth/logout-all": () => ({ base: {}, none: own }),
	"GET /v1/auth/sessions": () => ({ base: {}, none: own }),
	"DELETE /v1/auth/sessions/{id}": (w) => ({
		base: { params: { id: w.a.sessionId } },
		otherUser: { params: { id: w.a.sessionId } },
	}),
	"POST /v1/auth/password/change": () => ({
		base: { body: { currentPassword: "x", password: "another long password" } },
		none: own,
	}),
	"GET /v1/users/me": () => ({ base: {}, none: own }),
	"PATCH /v1/users/me": () => ({ base: { body: { displayName: "x" } }, none: own }),
	"DELETE /v1/users/me": () => ({ base: {}, none: own }),
	"GET /v1/users": (w) => ({
		base: { query: `handle=${w.a.handle}` },
		blocked: { query: `handle=${w.a.handle}`, emptyList: "users" },
	}),
	"GET /v1/users/{id}": (w) => ({ base: { params: { id: w.a.id } }, blocked: { params: { id: w.a.id } } }),
	"GET /v1/friends": () => ({ base: {}, none: own }),
	"POST /v1/friends/requests": (w) => ({ base: { body: { userId: w.a.id } }, blocked: { body: { userId: w.a.id } } }),
	"POST /v1/friends/requests/{id}/accept": (w) => ({
		base: { params: { id: w.friendRequest } },
		otherUser: { params: { id: w.friendRequest } },
	}),
	"POST /v1/friends/requests/{id}/decline": (w) => ({
		base: { params: { id: w.friendRequest } },
		otherUser: { params: { id: w.friendRequest } },
	}),
	"DELETE /v1/friends/{userId}": (w) => ({
		base: { params: { userId: w.a.id } },
		none: "ending a friendship names only the caller's own friend list; b is no friend of a, so it is a no-op",
	}),
	"GET /v1/blocks": () => ({ base: {}, none: own }),
	"PUT /v1/blocks/{userId}": (w) => ({
		base: { params: { userId: w.a.id } },
		none: "anyone may block anyone, even a blocker: it changes only the caller's own list",
	}),
	"DELETE /v1/blocks/{userId}": (w) => ({
		base: { params: { userId: w.a.id } },
		none: "unblocking changes only the caller's own list",
	}),
	"POST /v1/devices": () => ({ base: { body: { name: "x", credential: `${"A".repeat(43)}=` } }, none: own }),
	"GET /v1/devices": () => ({ base: {}, none: own }),
	"DELETE /v1/devices/{id}": (w) => ({ base: { params: { id: w.device } }, otherUser: { params: { id: w.device } } }),
	"POST /v1/keys/packages": (w) => ({
		base: { body: { deviceId: w.device, packages: [] } },
		otherUser: { body: { deviceId: w.device, packages: [] } },
	}),
	"GET /v1/keys/packages/count": (w) => ({
		base: { query: `deviceId=${w.device}` },
		otherUser: { query: `deviceId=${w.device}` },
	}),
	"POST /v1/keys/claim": (w) => ({ base: { body: { userIds: [w.a.id] } }, blocked: { body: { userIds: [w.a.id] } } }),
	"POST /v1/conversations": (w) => ({
		base: { body: { type: "direct", memberIds: [w.a.id] } },
		blocked: { body: { type: "group", memberIds: [w.a.id], title: "t" } },
	}),
	"GET /v1/conversations": () => ({ base: {}, none: own }),
	"GET /v1/conversations/{id}": (w) => ({ base: { params: { id: w.group } }, nonMember: { params: { id: w.group } } }),
	"PATCH /v1/conversations/{id}": (w) => ({
		base: { params: { id: w.group }, body: { title: "x" } },
		nonMember: { params: { id: w.group }, body: { title: "x" } },
	}),
	"POST /v1/conversations/{id}/members": (w) => ({
		base: { params: { id: w.group }, body: { userId: w.b.id } },
		nonMember: { params: { id: w.group }, body: { userId: w.b.id } },
		blocked: { params: { id: w.bGroup }, body: { userId: w.a.id } },
	}),
	"DELETE /v1/conversations/{id}/members/{userId}": (w) => ({
		base: { params: { id: w.group, userId: w.c.id } },
		nonMember: { params: { id: w.group, userId: w.c.id } },
	}),
	"GET /v1/conversations/{id}/messages": (w) => ({
		base: { params: { id: w.group } },
		nonMember: { params: { id: w.group } },
	}),
	"POST /v1/conversations/{id}/messages": (w) => ({
		base: { params: { id: w.group }, body: { clientId: "m1", ciphertext: "AAAA" } },
		nonMember: { params: { id: w.group }, body: { clientId: "m1", ciphertext: "AAAA" } },
		blocked: { params: { id: w.direct }, body: { clientId: "m1", ciphertext: "AAAA" } },
	}),
	"GET /v1/conversations/{id}/welcomes": (w) => ({
		base: { params: { id: w.group }, query: `deviceId=${w.device}` },
		nonMember: { params: { id: w.group }, query: `deviceId=${w.device}` },
	}),
	"DELETE /v1/conversations/{id}/welcomes/{welcomeId}": (w) => ({
		base: { params: { id: w.group, welcomeId: "wlc_aaaaaaaaaaaaaaaaaaaa" }, query: `deviceId=${w.device}` },
		nonMember: { params: { id: w.group, welcomeId: "wlc_aaaaaaaaaaaaaaaaaaaa" }, query: `deviceId=${w.device}` },
	}),
	"GET /v1/conversations/{id}/mls": (w) => ({
		base: { params: { id: w.group } },
		nonMember: { params: { id: w.group } },
	}),
	"POST /v1/conversations/{id}/read": (w) => ({
		base: { params: { id: w.group }, body: { seq: 0 } },
		nonMember: { params: { id: w.group }, body: { seq: 0 } },
	}),
	"POST /v1/files": (w) => ({
		base: { body: { size: 1, contentType: "application/octet-stream", conversationId: w.group } },
		nonMember: { body: { size: 1, contentType: "application/octet-stream", conversationId: w.group } },
	}),
	"GET /v1/files/{id}": (w) => ({ base: { params: { id: w.file } }, otherUser: { params: { id: w.file } } }),
	"DELETE /v1/files/{id}": (w) => ({ base: { params: { id: w.file } }, otherUser: { params: { id: w.file } } }),
	"PUT /v1/files/{id}/content": (w) => ({ base: { params: { id: w.file } }, otherUser: { params: { id: w.file } } }),
	"GET /v1/files/{id}/content": (w) => ({ base: { params: { id: w.file } }, otherUser: { params: { id: w.file } } }),
	"PUT /v1/files/{id}/parts/{partNumber}": (w) => ({
		base: { params: { id: w.file, partNumber: "1" } },
		otherUser: { params: { id: w.file, partNumber: "1" } },
	}),
	"GET /v1/files/{id}/parts": (w) => ({ base: { params: { id: w.file } }, otherUser: { params: { id: w.file } } }),
	"POST /v1/files/{id}/complete": (w) => ({ base: { params: { id: w.file } }, otherUser: { params: { id: w.file } } }),
	"GET /v1/storage/usage": () => ({ base: {}, none: own }),
	"POST /v1/calls": (w) => ({
		base: { body: { conversationId: w.group, media: "audio" } },
		nonMember: { body: { conversationId: w.group, media: "audio" } },
		blocked: { body: { conversationId: w.direct, media: "audio" } },
	}),
	"POST /v1/calls/{id}/join": (w) => ({ base: { params: { id: w.call } }, nonMember: { params: { id: w.call } } }),
	"POST /v1/calls/{id}/decline": (w) => ({ base: { params: { id: w.call } }, nonMember: { params: { id: w.call } } }),
	"POST /v1/calls/{id}/leave": (w) => ({ base: { params: { id: w.call } }, nonMember: { params: { id: w.call } } }),
	"POST /v1/calls/{id}/end": (w) => ({ base: { params: { id: w.call } }, nonMember: { params: { id: w.call } } }),
	"GET /v1/calls/{id}": (w) => ({ base: { params: { id: w.call } }, nonMember: { params: { id: w.call } } }),
	"GET /v1/turn/credentials": () => ({ base: {}, none: own }),
	"POST /v1/push/subscriptions": (w) => ({
		base: { body: { kind: "fcm", token: "t".repeat(32), deviceId: w.device } },
		otherUser: { body: { kind: "fcm", token: "t".repeat(32), deviceId: w.device } },
	}),
	"GET /v1/push/subscriptions": () => ({ base: {}, none: own }),
	"DELETE /v1/push/subscriptions/{id}": (w) => ({
		base: { params: { id: w.subscription } },
		otherUser: { params: { id: w.subscription } },
	}),
	"GET /v1/push/providers": () => ({ base: {}, none: own }),
};

const urlOf = (op: Operation, probe: Probe) =>
	fillPath(op.path, probe.params ?? {}) + (probe.query ? `?${probe.query}` : "");
const bodyOf = (op: Operation, probe: Probe) =>
	op.body === undefined
		? undefined
		: op.body === "binary"
			? new Uint8Array([1, 2, 3])
			: JSON.stringify(probe.body ?? {});

async function ok<T>(res: Promise<{ status: number; body: T }>, status: number, what: string): Promise<T> {
	const r = await res;
	if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
	return r.body;
}

async function newDevice(user: SignedIn): Promise<string> {
	const pair = (await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"])) as CryptoKeyPair;
	const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
	const credential = btoa(String.fromCharCode(...raw));
	const made = await ok(
		call<{ device: { id: string } }>("/v1/devices", { token: user.accessToken, body: { name: "matrix", credential } }),
		201,
		"device",
	);
	return made.device.id;
}

async function newFile(user: SignedIn): Promise<string> {
	const made = await ok(
		call<{ file: { id: string } }>("/v1/files", {
			token: user.accessToken,
			body: { size: 16, contentType: "application/octet-stream" },
		}),
		201,
		"file",
	);
	return made.file.id;
}

async function buildWorld(): Promise<World> {
	const [a, b, c] = await Promise.all([signUp(), signUp(), signUp()]);
	const group = await createGroup(a.accessToken, [c.id]);
	const bGroup = await createGroup(b.accessToken, [c.id]);
	const direct = (
		await ok(
			call<{ conversation: { id: string } }>("/v1/conversations", {
				token: a.accessToken,
				body: { type: "direct", memberIds: [b.id] },
			}),
			201,
			"direct conversation",
		)
	).conversation.id;
	const [file, device] = await Promise.all([newFile(a), newDevice(a)]);
	expect((await nodeHeartbeat(MATRIX_NODE)).status).toBe(204);
	const started = await ok(
		call<{ call: { id: string } }>("/v1/calls", {
			token: a.accessToken,
			body: { conversationId: group, media: "audio" },
		}),
		201,
		"call",
	);
	const request = await ok(
		call<{ request: { id: string } }>("/v1/friends/requests", { token: c.accessToken, body: { userId: a.id } }),
		201,
		"friend request",
	);
	const subscription = await ok(
		call<{ subscription: { id: string } }>("/v1/push/subscriptions", {
			token: a.accessToken,
			body: { kind: "fcm", token: `fcm-token-${crypto.randomUUID()}`, deviceId: device },
		}),
		201,
		"push subscription",
	);
	expect((await call(`/v1/blocks/${b.id}`, { method: "PUT", token: a.accessToken })).status).toBe(204);
	return {
		a,
		b,
		c,
		group,
		direct,
		bGroup,
		file,
		device,
		call: started.call.id,
		friendRequest: request.request.id,
		subscription: subscription.subscription.id,
	};
}

const MATRIX_NODE = {
	nodeId: "node-matrix",
	url: "ws://media.test:8790/v1/rtc",
	region: "local",
	capacity: 500,
	load: { calls: 0, peers: 0 },
	draining: false,
};

/** A token signed with the api's own key, valid in every way except that it expired an hour ago. */
async function expiredToken(user: SignedIn): Promise<string> {
	const now = Math.floor(Date.now() / 1000);
	const key = config.signingKeys.active;
	return new SignJWT({ sid: user.sessionId })
		.setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: key.kid, typ: "at+jwt" })
		.setIssuer(config.issuer)
		.setAudience(ACCESS_TOKEN_AUDIENCE)
		.setSubject(user.id)
		.setIssuedAt(now - 2 * 3600)
		.setExpirationTime(now - 3600)
		.setJti(crypto.randomUUID())
		.sign(key.privateKey);
}

describe("authorization matrix", () => {
	it("knows every secured operation in the route table", async () => {
		const keys = operationsOf(doc)
			.filter((op) => op.secured)
			.map((op) => op.key);
		const untaught = keys.filter((key) => !(key in MATRIX));
		expect(
			untaught,
			`the authorization matrix does not know how to build a resource for these operations: teach it (MATRIX in matrix.test.ts)`,
		).toEqual([]);
		const stale = Object.keys(MATRIX).filter((key) => !keys.includes(key));
		expect(stale, "MATRIX entries for operations the api no longer documents").toEqual([]);
	});

	it("answers every secured operation × {no token, expired, revoked, other user, non-member, blocked}", async () => {
		const world = await buildWorld();
		const revoked = await signUp();
		expect((await call("/v1/auth/logout", { method: "POST", token: revoked.accessToken })).status).toBe(204);
		const expired = await expiredToken(world.b);
		const ops = operationsOf(doc).filter((op) => op.secured);
		const seen: Record<Denial, number> = { otherUser: 0, nonMember: 0, blocked: 0 };
		for (const op of ops) {
			const entry = MATRIX[op.key];
			if (!entry) throw new Error(`${op.key}: not in the authorization matrix; teach MATRIX how to build its resource`);
			const probes = entry(world);
			const denials = (["otherUser", "nonMember", "blocked"] as const).filter((d) => probes[d]);
			if (denials.length === 0 && !probes.none) throw new Error(`${op.key}: no denial case and no reason why (none)`);
			for (const [label, token, code] of [
				["no token", undefined, undefined],
				["expired token", expired, "TOKEN_EXPIRED"],
				["revoked session", revoked.accessToken, undefined],
			] as const) {
				const sent = await send(op, urlOf(op, probes.base), { token, body: bodyOf(op, probes.base) });
				expect(sent.status, `${op.key} with ${label}: ${sent.text}`).toBe(401);
				expectEnvelope(sent, `${op.key} with ${label}`);
				if (code) expect(JSON.parse(sent.text).error.code, `${op.key} with ${label}`).toBe(code);
			}
			for (const denial of denials) {
				const probe = probes[denial] as Probe;
				const sent = await send(op, urlOf(op, probe), { token: world.b.accessToken, body: bodyOf(op, probe) });
				if (probe.emptyList && sent.status === 200) {
					expect(JSON.parse(sent.text)[probe.emptyList], `${op.key} as ${denial}: ${sent.text}`).toEqual([]);
				} else {
					expect([403, 404], `${op.key} as ${denial}: ${sent.status} ${sent.text}`).toContain(sent.status);
					expectEnvelope(sent, `${op.key} as ${denial}`);
				}
				seen[denial]++;
			}
		}
		expect(seen.otherUser).toBeGreaterThan(5);
		expect(seen.nonMember).toBeGreaterThan(5);
		expect(seen.blocked).toBeGreaterThan(3);
		// The refusals above left a's resources as they were.
		const still = await call<{ conversation: { members: unknown[] } }>(`/v1/conversations/${world.group}`, {
			token: world.a.accessToken,
		});
		expect(still.status).toBe(200);
		expect((await call(`/v1/files/${world.file}`, { token: world.a.accessToken })).status).toBe(200);
		expect((await call(`/v1/calls/${world.call}`, { token: world.a.accessToken })).status).toBe(200);
	});
});
