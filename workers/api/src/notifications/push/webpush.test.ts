import { describe, expect, it } from "vitest";
import { base64url, fromBase64 } from "../../lib/crypto.ts";
import { acceptableEndpoint, encryptWebPush } from "./webpush.ts";

// RFC 8291 §5 / Appendix A: the published example, byte for byte.
const EXAMPLE = {
	plaintext: "When I grow up, I want to be a watermelon",
	asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
	asPublic: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
	uaPublic: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
	authSecret: "BTBZMqHH6r4Tts7J_aSIgg",
	salt: "DGv6ra1nlYgDCS1FRnbzlw",
	body:
		"DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A" +
		"_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
};

describe("Web Push payload encryption (RFC 8291)", () => {
	it("reproduces the RFC's example with its sender key and salt", async () => {
		const point = fromBase64(EXAMPLE.asPublic);
		const jwk = {
			kty: "EC",
			crv: "P-256",
			x: base64url(point.subarray(1, 33)),
			y: base64url(point.subarray(33, 65)),
		};
		const algorithm = { name: "ECDH", namedCurve: "P-256" };
		const senderKeys = {
			privateKey: await crypto.subtle.importKey("jwk", { ...jwk, d: EXAMPLE.asPrivate }, algorithm, false, [
				"deriveBits",
			]),
			publicKey: await crypto.subtle.importKey("jwk", jwk, algorithm, true, []),
		} as CryptoKeyPair;
		const body = await encryptWebPush(
			new TextEncoder().encode(EXAMPLE.plaintext),
			fromBase64(EXAMPLE.uaPublic),
			fromBase64(EXAMPLE.authSecret),
			{ salt: fromBase64(EXAMPLE.salt), senderKeys, padTo: 0 },
		);
		expect(base64url(body)).toBe(EXAMPLE.body);
	});

	it("pads short payloads so their size says nothing", async () => {
		const ua = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
			"deriveBits",
		])) as CryptoKeyPair;
		const p256dh = new Uint8Array((await crypto.subtle.exportKey("raw", ua.publicKey)) as ArrayBuffer);
		const auth = crypto.getRandomValues(new Uint8Array(16));
		const short = await encryptWebPush(new TextEncoder().encode("{}"), p256dh, auth);
		const longer = await encryptWebPush(new TextEncoder().encode("x".repeat(100)), p256dh, auth);
		expect(short.length).toBe(longer.length);
	});
});

describe("Web Push endpoints", () => {
	it("outside dev/test accepts only public https push services", () => {
		expect(acceptableEndpoint("https://fcm.googleapis.com/fcm/send/abc", false)).toBe(true);
		expect(acceptableEndpoint("https://updates.push.services.mozilla.com/wpush/v2/x", false)).toBe(true);
		for (const bad of [
			"http://fcm.googleapis.com/x",
			"https://127.0.0.1/x",
			"https://[::1]/x",
			"https://localhost/x",
			"https://metadata.internal/x",
			"https://user:pw@push.example.com/x",
			"not a url",
		]) {
			expect(acceptableEndpoint(bad, false), bad).toBe(false);
		}
		expect(acceptableEndpoint("http://127.0.0.1:8080/webpush/x", true)).toBe(true);
	});
});
