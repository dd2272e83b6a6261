// Argon2id (OWASP: m=19 MiB, t=2, p=1) from a WASM build loaded as a module,
// because deployed Workers refuse runtime WASM compilation and cap PBKDF2 at
// 100k iterations. The password is first HMAC'd with a secret pepper, so a
// stolen database alone cannot be brute-forced.
import { argon2id, argon2Verify, setWASMModules } from "argon2-wasm-edge";
import argon2WASM from "argon2-wasm-edge/wasm/argon2.wasm";
import blake2bWASM from "argon2-wasm-edge/wasm/blake2b.wasm";
import { hmacSha256 } from "../lib/crypto.ts";

setWASMModules({ argon2WASM, blake2bWASM });

export const ARGON2_MEMORY_KIB = 19_456;
export const ARGON2_ITERATIONS = 2;
export const ARGON2_PARALLELISM = 1;
export const ARGON2_HASH_BYTES = 32;
export const ARGON2_SALT_BYTES = 16;
/** A Worker isolate has 128 MiB; never run more hashes at once than fit beside the app. */
export const MAX_CONCURRENT_HASHES = 2;

const encoder = new TextEncoder();

let running = 0;
const waiting: Array<() => void> = [];
async function limited<T>(work: () => Promise<T>): Promise<T> {
	if (running >= MAX_CONCURRENT_HASHES) await new Promise<void>((resolve) => waiting.push(resolve));
	running++;
	try {
		return await work();
	} finally {
		running--;
		waiting.shift()?.();
	}
}

async function peppered(password: string, pepper: Uint8Array): Promise<Uint8Array> {
	return hmacSha256(pepper, encoder.encode(password.normalize("NFKC")));
}

export async function hashPassword(password: string, pepper: Uint8Array): Promise<string> {
	const input = await peppered(password, pepper);
	return limited(() =>
		argon2id({
			password: input,
			salt: crypto.getRandomValues(new Uint8Array(ARGON2_SALT_BYTES)),
			memorySize: ARGON2_MEMORY_KIB,
			iterations: ARGON2_ITERATIONS,
			parallelism: ARGON2_PARALLELISM,
			hashLength: ARGON2_HASH_BYTES,
			outputType: "encoded",
		}),
	);
}

export interface PasswordCheck {
	ok: boolean;
	/** The stored hash used weaker parameters than today's: store a fresh one. */
	needsRehash: boolean;
}

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/;

export function parameters(stored: string): { memoryKib: number; iterations: number; parallelism: number } | undefined {
	const m = PHC.exec(stored);
	if (!m) return undefined;
	return { memoryKib: Number(m[1]), iterations: Number(m[2]), parallelism: Number(m[3]) };
}

export async function verifyPassword(password: string, stored: string, pepper: Uint8Array): Promise<PasswordCheck> {
	const params = parameters(stored);
	if (!params) return { ok: false, needsRehash: false };
	const input = await peppered(password, pepper);
	const ok = await limited(() => argon2Verify({ password: input, hash: stored }));
	const needsRehash = params.memoryKib < ARGON2_MEMORY_KIB || params.iterations < ARGON2_ITERATIONS;
	return { ok, needsRehash: ok && needsRehash };
}

/** Verified against when the account does not exist, so both paths cost the same. */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(pepper: Uint8Array): Promise<string> {
	dummyHash ??= hashPassword("not-a-real-password-but-same-cost", pepper);
	return dummyHash;
}
