import {
	type Credential,
	defaultCapabilities,
	defaultLifetime,
	encodeMlsMessage,
	generateKeyPackageWithKey,
	getCiphersuiteFromName,
	getCiphersuiteImpl,
} from "ts-mls";
import { describe, expect, it } from "vitest";
import { base64FromBytes } from "../lib/crypto.ts";
import { call, type SignedIn, signUp } from "./helpers.ts";
import { TestSocket } from "./sockets.ts";

type ErrorReply = { error: { code: string; message: string } };

async function deviceWithKeys(user: SignedIn) {
	const impl = await getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
	const keys = await impl.signature.keygen();
	const res = await call<{ device: { id: string } }>("/v1/devices", {
		token: user.accessToken,
		body: { name: "phone", credential: base64FromBytes(keys.publicKey) },
	});
	expect(res.status).toBe(201);
	const credential: Credential = {
		credentialType: "basic",
		identity: new TextEncoder().encode(`${user.id}/${res.body.device.id}`),
	};
	const make = async (signingKeys = keys) => {
		const kp = await generateKeyPackageWithKey(
			credential,
			defaultCapabilities(),
			defaultLifetime,
			[],
			signingKeys,
			impl,
		);
		return base64FromBytes(
			encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: "mls_key_package", version: "mls10" }),
		);
	};
	return { deviceId: res.body.device.id, make, impl };
}

describe("key packages", () => {
	it("stores verified packages, counts them, and refuses bad ones without storing anything", async () => {
		const user = await signUp();
		const { deviceId, make, impl } = await deviceWithKeys(user);
		const good = await Promise.all([make(), make(), make()]);
		const stored = await call<{ stored: number; count: number }>("/v1/keys/packages", {
			token: user.accessToken,
			body: { deviceId, packages: good, lastResort: await make() },
		});
		expect(stored.status).toBe(201);
		expect(stored.body).toEqual({ stored: 4, count: 3 });

		const foreign = await make(await impl.signature.keygen());
		const refused = await call<ErrorReply>("/v1/keys/packages", {
			token: user.accessToken,
			body: { deviceId, packages: [await make(), foreign] },
		});
		expect(refused.status).toBe(400);
		expect(refused.body.error.message).toContain("packages[1]");
		const garbage = await call<ErrorReply>("/v1/keys/packages", {
			token: user.accessToken,
			body: { deviceId, packages: [btoa("this is not an MLS message")] },
		});
		expect(garbage.status).toBe(400);
		const count = await call<{ count: number; lastResort: boolean }>(`/v1/keys/packages/count?deviceId=${deviceId}`, {
			token: user.accessToken,
		});
		expect(count.body).toEqual({ count: 3, lastResort: true });

		const other = await signUp();
		expect((await call(`/v1/keys/packages/count?deviceId=${deviceId}`, { token: other.accessToken })).status).toBe(404);
		expect(
			(await call("/v1/keys/packages", { token: other.accessToken, body: { deviceId, packages: good } })).status,
		).toBe(404);
	});

	it("25 concurrent claims of 10 one-time packages hand each out once, then the last-resort one", async () => {
		const owner = await signUp();
		const { deviceId, make } = await deviceWithKeys(owner);
		const oneTime = await Promise.all(Array.from({ length: 10 }, () => make()));
		const lastResort = await make();
		await call("/v1/keys/packages", { token: owner.accessToken, body: { deviceId, packages: oneTime, lastResort } });
		const claimer = await signUp();
		const claims = await Promise.all(
			Array.from({ length: 25 }, () =>
				call<{ packages: Array<{ package: string; lastResort: boolean; deviceId: string }> }>("/v1/keys/claim", {
					token: claimer.accessToken,
					body: { userIds: [owner.id] },
				}),
			),
		);
		const handed = claims.map((c) => {
			expect(c.status).toBe(200);
			expect(c.body.packages).toHaveLength(1);
			return c.body.packages[0] as { package: string; lastResort: boolean };
		});
		const oneTimeHanded = handed.filter((p) => !p.lastResort).map((p) => p.package);
		expect(oneTimeHanded.sort()).toEqual([...oneTime].sort());
		const rest = handed.filter((p) => p.lastResort);
		expect(rest).toHaveLength(15);
		for (const p of rest) expect(p.package).toBe(lastResort);
	});

	it("warns the owner's devices when their packages run low", async () => {
		const owner = await signUp();
		const { deviceId, make } = await deviceWithKeys(owner);
		await call("/v1/keys/packages", {
			token: owner.accessToken,
			body: { deviceId, packages: [await make(), await make()] },
		});
		const channel = await TestSocket.open("/v1/ws", owner.accessToken);
		await channel.next("ready");
		const claimer = await signUp();
		await call("/v1/keys/claim", { token: claimer.accessToken, body: { userIds: [owner.id] } });
		expect(await channel.next("keys_low")).toMatchObject({ deviceId, count: 1 });
		channel.close();
	});

	it("refuses claims across a block", async () => {
		const a = await signUp();
		const b = await signUp();
		await call(`/v1/blocks/${a.id}`, { method: "PUT", token: b.accessToken });
		const res = await call<ErrorReply>("/v1/keys/claim", { token: a.accessToken, body: { userIds: [b.id] } });
		expect(res.status).toBe(403);
	});
});

describe("device removal", () => {
	it("is announced to the user's other devices and to their conversations", async () => {
		const user = await signUp();
		const friend = await signUp();
		const { deviceId } = await deviceWithKeys(user);
		const conv = await call<{ conversation: { id: string } }>("/v1/conversations", {
			token: friend.accessToken,
			body: { type: "group", memberIds: [user.id] },
		});
		const room = await TestSocket.open(`/v1/conversations/${conv.body.conversation.id}/ws`, friend.accessToken);
		await room.next("ready");
		const channel = await TestSocket.open("/v1/ws", user.accessToken);
		await channel.next("ready");
		const other = await call<{ accessToken: string }>("/v1/auth/login", {
			body: { email: user.email, password: user.password, deviceName: "second" },
			ip: user.ip,
		});
		expect((await call(`/v1/devices/${deviceId}`, { method: "DELETE", token: other.body.accessToken })).status).toBe(
			204,
		);
		expect(await room.next("device")).toMatchObject({ change: "removed", userId: user.id, deviceId });
		room.close();
	});
});
