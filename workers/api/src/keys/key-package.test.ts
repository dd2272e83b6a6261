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
import { checkKeyPackage } from "./key-package.ts";

async function makePackage() {
	const impl = await getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
	const keys = await impl.signature.keygen();
	const credential: Credential = { credentialType: "basic", identity: new TextEncoder().encode("device") };
	const kp = await generateKeyPackageWithKey(credential, defaultCapabilities(), defaultLifetime, [], keys, impl);
	const bytes = encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: "mls_key_package", version: "mls10" });
	return { bytes, publicKey: keys.publicKey };
}

describe("checkKeyPackage", () => {
	it("accepts a package signed by the device's credential key", async () => {
		const { bytes, publicKey } = await makePackage();
		expect(await checkKeyPackage(base64FromBytes(bytes), publicKey)).toMatchObject({ ok: true });
	});

	it("refuses another key, a tampered package and garbage", async () => {
		const { bytes, publicKey } = await makePackage();
		const other = await makePackage();
		expect(await checkKeyPackage(base64FromBytes(bytes), other.publicKey)).toMatchObject({ ok: false });
		const tampered = bytes.slice();
		tampered[tampered.length - 70] = (tampered[tampered.length - 70] ?? 0) ^ 1;
		expect((await checkKeyPackage(base64FromBytes(tampered), publicKey)).ok).toBe(false);
		expect((await checkKeyPackage(btoa("garbage!"), publicKey)).ok).toBe(false);
	});
});
