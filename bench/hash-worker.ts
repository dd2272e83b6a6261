// Benchmark-only Worker: runs N password hashes in workerd so the client can
// time them, next to PBKDF2 at the 100,000 iterations deployed Workers allow.
import { hashPassword } from "../workers/api/src/auth/password.ts";

const PEPPER = new TextEncoder().encode("bench-only-pepper-not-a-secret-value");

async function pbkdf2(password: string): Promise<void> {
	const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
	await crypto.subtle.deriveBits(
		{ name: "PBKDF2", hash: "SHA-256", salt: crypto.getRandomValues(new Uint8Array(16)), iterations: 100_000 },
		key,
		256,
	);
}

export default {
	async fetch(request: Request): Promise<Response> {
		const url = new URL(request.url);
		const n = Math.min(100, Number(url.searchParams.get("n") ?? 0));
		const kind = url.searchParams.get("kind") ?? "argon2id";
		for (let i = 0; i < n; i++) {
			if (kind === "pbkdf2") await pbkdf2(`password-${i}`);
			else await hashPassword(`password-${i}`, PEPPER);
		}
		return new Response(String(n));
	},
} satisfies ExportedHandler;
