// Checks an uploaded KeyPackage without trusting the client: it must parse as
// an RFC 9420 MLSMessage, be signed by its leaf's signature key, and that key
// must be the registering device's credential.
import { ciphersuites, decodeMlsMessage, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import { verifyKeyPackage } from "ts-mls/keyPackage.js";
import { fromBase64 } from "../lib/crypto.ts";

export type KeyPackageCheck = { ok: true; bytes: Uint8Array } | { ok: false; reason: string };

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

export async function checkKeyPackage(base64: string, deviceCredential: Uint8Array): Promise<KeyPackageCheck> {
	let bytes: Uint8Array;
	try {
		bytes = fromBase64(base64);
	} catch {
		return { ok: false, reason: "is not base64" };
	}
	let decoded: ReturnType<typeof decodeMlsMessage>;
	try {
		decoded = decodeMlsMessage(bytes, 0);
	} catch {
		decoded = undefined;
	}
	const message = decoded?.[0];
	if (message?.wireformat !== "mls_key_package" || decoded?.[1] !== bytes.length) {
		return { ok: false, reason: "is not an MLSMessage carrying a KeyPackage" };
	}
	const kp = message.keyPackage;
	if (!equal(kp.leafNode.signaturePublicKey, deviceCredential)) {
		return { ok: false, reason: "carries a signature key other than the device's credential" };
	}
	const suiteName = Object.entries(ciphersuites).find(([, id]) => id === (kp.cipherSuite as unknown as number))?.[0];
	const name = typeof kp.cipherSuite === "string" ? kp.cipherSuite : suiteName;
	if (!name?.endsWith("_Ed25519")) return { ok: false, reason: "uses a cipher suite other than an Ed25519 one" };
	const impl = await getCiphersuiteImpl(getCiphersuiteFromName(name as Parameters<typeof getCiphersuiteFromName>[0]));
	if (!(await verifyKeyPackage(kp, impl.signature))) return { ok: false, reason: "has an invalid signature" };
	return { ok: true, bytes };
}
