export function toBase64(bytes: Uint8Array): string {
	let binary = "";
	for (const b of bytes) binary += String.fromCharCode(b);
	return btoa(binary);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
	const binary = atob(text);
	return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function toHex(bytes: Uint8Array): string {
	return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export const utf8 = {
	encode: (text: string) => new TextEncoder().encode(text),
	decode: (bytes: Uint8Array) => new TextDecoder().decode(bytes),
};
