import { describe, expect, it } from "vitest";
import { isEd25519PublicKey } from "./ed25519.ts";

describe("isEd25519PublicKey", () => {
	it("accepts real public keys", async () => {
		for (let i = 0; i < 20; i++) {
			const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
			const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
			expect(isEd25519PublicKey(raw)).toBe(true);
		}
	});

	it("refuses non-canonical, off-curve and wrong-length input", () => {
		expect(isEd25519PublicKey(new Uint8Array(32).fill(255))).toBe(false);
		expect(isEd25519PublicKey(new Uint8Array(31))).toBe(false);
		// y = 2 has no x on the curve.
		const offCurve = new Uint8Array(32);
		offCurve[0] = 2;
		expect(isEd25519PublicKey(offCurve)).toBe(false);
	});
});
