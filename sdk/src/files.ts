// Attachments are encrypted on the client with a fresh AES-256-GCM key; the
// key travels inside an end-to-end encrypted message, the server stores only ciphertext.
import { fromBase64, toBase64 } from "./encoding.ts";

export interface FileKey {
	/** base64 raw AES-256 key */
	key: string;
	/** base64 96-bit IV */
	iv: string;
	algorithm: "AES-256-GCM";
}

export async function encryptFile(plaintext: Uint8Array): Promise<{ ciphertext: Uint8Array; fileKey: FileKey }> {
	const key = crypto.getRandomValues(new Uint8Array(32));
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const cryptoKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
	const ciphertext = new Uint8Array(
		await crypto.subtle.encrypt({ name: "AES-GCM", iv }, cryptoKey, plaintext as BufferSource),
	);
	return { ciphertext, fileKey: { key: toBase64(key), iv: toBase64(iv), algorithm: "AES-256-GCM" } };
}

export async function decryptFile(ciphertext: Uint8Array, fileKey: FileKey): Promise<Uint8Array> {
	const cryptoKey = await crypto.subtle.importKey("raw", fromBase64(fileKey.key), "AES-GCM", false, ["decrypt"]);
	return new Uint8Array(
		await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(fileKey.iv) }, cryptoKey, ciphertext as BufferSource),
	);
}
