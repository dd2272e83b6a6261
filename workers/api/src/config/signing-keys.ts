// Asymmetric token signing keys from a secret. The first key signs; every key
// verifies and is published, so a new key can be added before the old retires.
import { exportJWK, importJWK, type JWK } from "jose";
import { z } from "zod";

export const TOKEN_ALGORITHM = "EdDSA";

const PrivateJwk = z.object({
	kty: z.literal("OKP"),
	crv: z.literal("Ed25519"),
	x: z.string().min(43),
	d: z.string().min(43),
	kid: z.string().min(8).max(64),
});

export interface SigningKey {
	kid: string;
	privateKey: CryptoKey;
	publicKey: CryptoKey;
	publicJwk: JWK;
}

export class SigningKeySet {
	readonly keys: readonly SigningKey[];

	private constructor(keys: SigningKey[]) {
		this.keys = keys;
	}

	static async fromSecret(secret: string): Promise<SigningKeySet> {
		let raw: unknown;
		try {
			raw = JSON.parse(secret);
		} catch {
			throw new Error("not valid JSON");
		}
		const parsed = z
			.array(PrivateJwk)
			.min(1)
			.max(4)
			.safeParse(Array.isArray(raw) ? raw : [raw]);
		if (!parsed.success) throw new Error("expected 1-4 private Ed25519 JWKs (kty OKP, crv Ed25519, x, d, kid)");
		const kids = new Set(parsed.data.map((k) => k.kid));
		if (kids.size !== parsed.data.length) throw new Error("kid values must be unique");
		const keys = await Promise.all(
			parsed.data.map(async (jwk): Promise<SigningKey> => {
				const { d: _private, ...publicPart } = jwk;
				const privateKey = (await importJWK({ ...jwk, alg: TOKEN_ALGORITHM }, TOKEN_ALGORITHM)) as CryptoKey;
				const publicKey = (await importJWK({ ...publicPart, alg: TOKEN_ALGORITHM }, TOKEN_ALGORITHM)) as CryptoKey;
				const publicJwk = { ...(await exportJWK(publicKey)), kid: jwk.kid, alg: TOKEN_ALGORITHM, use: "sig" };
				return { kid: jwk.kid, privateKey, publicKey, publicJwk };
			}),
		);
		return new SigningKeySet(keys);
	}

	get active(): SigningKey {
		return this.keys[0] as SigningKey;
	}

	byKid(kid: string): SigningKey | undefined {
		return this.keys.find((k) => k.kid === kid);
	}
}
