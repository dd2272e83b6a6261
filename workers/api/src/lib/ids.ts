import { ID_PREFIXES } from "@secureconnect/protocol";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** 20 random base32 characters (100 bits) behind a type prefix. */
export function newId<T extends string>(kind: keyof typeof ID_PREFIXES): T {
	const bytes = crypto.getRandomValues(new Uint8Array(20));
	let out = "";
	for (const b of bytes) out += BASE32[b & 31];
	return `${ID_PREFIXES[kind]}_${out}` as T;
}
