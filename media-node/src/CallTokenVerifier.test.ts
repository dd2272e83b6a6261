import http from "node:http";
import type { AddressInfo } from "node:net";

import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";

import { CallTokenVerifier } from "./CallTokenVerifier.ts";
import { RtcError } from "./errors.ts";
import { callToken, FakeApi, signingKey } from "./testing/fixtures.ts";

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) {
		await cleanup();
	}
});

async function setup(jwksCooldownMs?: number) {
	const api = await FakeApi.start();
	const key = await signingKey("kid-1");

	api.keys.push(key);
	cleanups.push(() => api.close());

	const verifier = CallTokenVerifier.create({
		jwksUrl: `${api.url}/.well-known/jwks.json`,
		issuer: api.url,
		...(jwksCooldownMs === undefined ? {} : { jwksCooldownMs }),
	});

	return { api, key, verifier };
}

async function refusal(promise: Promise<unknown>): Promise<RtcError> {
	try {
		await promise;
	} catch (error) {
		if (error instanceof RtcError) {
			return error;
		}
		throw error;
	}
	throw new Error("expected a refusal");
}

describe("CallTokenVerifier", () => {
	it("returns the claims of a valid token and caches the key set", async () => {
		const { api, key, verifier } = await setup();
		const token = await callToken({
			key,
			issuer: api.url,
			userId: "usr_alice",
			callId: "call_1",
			deviceId: "dev_1",
			perm: ["publish", "subscribe", "publish"],
			extra: { jti: "token-1" },
		});

		expect(await verifier.verify(token)).toMatchObject({
			userId: "usr_alice",
			callId: "call_1",
			deviceId: "dev_1",
			permissions: ["publish", "subscribe"],
			tokenId: "token-1",
		});
		await verifier.verify(await callToken({ key, issuer: api.url, userId: "usr_bob", callId: "call_1" }));
		expect(api.jwksRequests).toBe(1);
	});

	it("fetches the key set again for an unknown kid (rotation), at most once per cooldown", async () => {
		const { api, key, verifier } = await setup(0);

		await verifier.verify(await callToken({ key, issuer: api.url, userId: "usr_a", callId: "c" }));

		const rotated = await signingKey("kid-2");

		api.keys.push(rotated);
		expect(
			await verifier.verify(await callToken({ key: rotated, issuer: api.url, userId: "usr_a", callId: "c" })),
		).toMatchObject({ userId: "usr_a" });
		expect(api.jwksRequests).toBe(2);

		// With the default cooldown, a burst of unknown kids costs one fetch.
		const slow = await setup();

		await slow.verifier.verify(await callToken({ key: slow.key, issuer: slow.api.url, userId: "usr_a", callId: "c" }));
		for (let i = 0; i < 3; i++) {
			const stranger = await signingKey(`stranger-${i}`);
			const error = await refusal(
				slow.verifier.verify(await callToken({ key: stranger, issuer: slow.api.url, userId: "u", callId: "c" })),
			);

			expect(error.code).toBe("INVALID_TOKEN");
		}
		expect(slow.api.jwksRequests).toBe(1);
	});

	it("allows 30 s of clock skew on exp, not more", async () => {
		const { api, key, verifier } = await setup();

		await expect(
			verifier.verify(await callToken({ key, issuer: api.url, userId: "u", callId: "c", iat: -80, ttl: 60 })),
		).resolves.toBeDefined();

		const error = await refusal(
			verifier.verify(await callToken({ key, issuer: api.url, userId: "u", callId: "c", iat: -100, ttl: 60 })),
		);

		expect(error).toMatchObject({ code: "TOKEN_EXPIRED", closeCode: 4001 });
	});

	it("refuses tokens issued in the future, tokens without exp, and other algorithms", async () => {
		const { api, key, verifier } = await setup();

		expect(
			(await refusal(verifier.verify(await callToken({ key, issuer: api.url, userId: "u", callId: "c", iat: 90 }))))
				.code,
		).toBe("INVALID_TOKEN");

		const noExp = await new SignJWT({ cid: "c", perm: [] })
			.setProtectedHeader({ alg: "EdDSA", kid: key.kid })
			.setIssuer(api.url)
			.setAudience("secureconnect-media")
			.setSubject("u")
			.setIssuedAt()
			.sign(key.privateKey);

		expect((await refusal(verifier.verify(noExp))).message).toMatch(/exp/);

		const hs256 = await new SignJWT({ cid: "c", perm: [] })
			.setProtectedHeader({ alg: "HS256", kid: key.kid })
			.setIssuer(api.url)
			.setAudience("secureconnect-media")
			.setSubject("u")
			.setIssuedAt()
			.setExpirationTime("1m")
			.sign(new TextEncoder().encode("a-shared-secret-that-must-not-work-here"));

		expect(await refusal(verifier.verify(hs256))).toMatchObject({ code: "INVALID_TOKEN" });
	});

	it("fails closed with SERVICE_UNAVAILABLE when the key set answers badly", async () => {
		const server = http.createServer((_req, res) => {
			res.writeHead(500);
			res.end("oops");
		});

		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));

		const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		const verifier = CallTokenVerifier.create({ jwksUrl: `${url}/.well-known/jwks.json`, issuer: url });
		const key = await signingKey("kid-1");
		const error = await refusal(verifier.verify(await callToken({ key, issuer: url, userId: "u", callId: "c" })));

		expect(error).toMatchObject({ code: "SERVICE_UNAVAILABLE", closeCode: 1013 });
	});
});
