// Verifies call tokens: JWTs the api signs with EdDSA (header `kid`), checked
// against the api's JWKS. jose caches the key set and fetches it again when a
// token names a kid it does not know (at most once per cooldown), so key
// rotation on the api needs nothing here.
//
// Refused, each with its own code and message: a bad signature or unknown key,
// wrong `aud`/`iss`, expired (30 s tolerance), a lifetime (exp - iat) above
// 120 s, missing or malformed claims. When the key set cannot be fetched the
// verifier fails closed with SERVICE_UNAVAILABLE.

import type { JWTPayload, JWTVerifyGetKey } from "jose";
import { createRemoteJWKSet, errors, jwtVerify } from "jose";

import {
	CALL_TOKEN_MAX_TTL_SECONDS,
	type CallPermission,
	CallTokenClaims,
	MEDIA_TOKEN_AUDIENCE,
	RTC_CLOSE_CODES,
} from "../../protocol/src/signaling.ts";
import { RtcError } from "./errors.ts";

export const CLOCK_TOLERANCE_SECONDS = 30;
export const JWKS_TIMEOUT_MS = 5_000;
/** Shortest time between two JWKS fetches triggered by unknown kids. */
export const JWKS_COOLDOWN_MS = 30_000;
/** Longest time a fetched JWKS is used before it is fetched again. */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
export const TOKEN_ALGORITHMS = ["EdDSA", "Ed25519"];

/** What the node keeps from a verified call token. */
export type CallClaims = {
	userId: string;
	callId: string;
	deviceId: string | undefined;
	permissions: CallPermission[];
	issuedAt: number;
	expiresAt: number;
	tokenId: string | undefined;
	/** `rid`: id of the api request that issued the token. */
	requestId: string | undefined;
};

export interface TokenVerifier {
	verify(token: string): Promise<CallClaims>;
}

export type CallTokenVerifierOptions = {
	jwksUrl: string;
	issuer: string | undefined;
	audience?: string;
	clockToleranceSeconds?: number;
	maxTtlSeconds?: number;
	/** Shortest time between JWKS fetches for unknown kids (default JWKS_COOLDOWN_MS). */
	jwksCooldownMs?: number;
	/** Replaces the remote key set (tests). */
	keySet?: JWTVerifyGetKey;
};

const unauthorized = (code: "INVALID_TOKEN" | "TOKEN_EXPIRED", message: string) =>
	new RtcError(code, message, RTC_CLOSE_CODES.UNAUTHORIZED);

export class CallTokenVerifier implements TokenVerifier {
	#keySet: JWTVerifyGetKey;
	#issuer: string | undefined;
	#audience: string;
	#clockTolerance: number;
	#maxTtl: number;

	static create(options: CallTokenVerifierOptions): CallTokenVerifier {
		return new CallTokenVerifier(options);
	}

	private constructor(options: CallTokenVerifierOptions) {
		this.#keySet =
			options.keySet ??
			createRemoteJWKSet(new URL(options.jwksUrl), {
				timeoutDuration: JWKS_TIMEOUT_MS,
				cooldownDuration: options.jwksCooldownMs ?? JWKS_COOLDOWN_MS,
				cacheMaxAge: JWKS_MAX_AGE_MS,
			});
		this.#issuer = options.issuer;
		this.#audience = options.audience ?? MEDIA_TOKEN_AUDIENCE;
		this.#clockTolerance = options.clockToleranceSeconds ?? CLOCK_TOLERANCE_SECONDS;
		this.#maxTtl = options.maxTtlSeconds ?? CALL_TOKEN_MAX_TTL_SECONDS;
	}

	async verify(token: string): Promise<CallClaims> {
		let payload: JWTPayload;

		try {
			({ payload } = await jwtVerify(token, this.#keySet, {
				algorithms: TOKEN_ALGORITHMS,
				audience: this.#audience,
				...(this.#issuer === undefined ? {} : { issuer: this.#issuer }),
				clockTolerance: this.#clockTolerance,
				// Also refuses an iat in the future (beyond the tolerance).
				maxTokenAge: this.#maxTtl,
				requiredClaims: ["sub", "cid", "iat", "exp", "perm"],
			}));
		} catch (error) {
			throw CallTokenVerifier.#classify(error, this.#audience);
		}

		const parsed = CallTokenClaims.safeParse(payload);

		if (!parsed.success) {
			throw unauthorized("INVALID_TOKEN", "The call token's claims are malformed.");
		}

		const claims = parsed.data;
		const lifetime = claims.exp - claims.iat;

		if (lifetime <= 0 || lifetime > this.#maxTtl) {
			throw unauthorized(
				"INVALID_TOKEN",
				`The call token's lifetime (exp - iat = ${lifetime} s) must be between 1 and ${this.#maxTtl} s.`,
			);
		}

		return {
			userId: claims.sub,
			callId: claims.cid,
			deviceId: claims.did,
			permissions: [...new Set(claims.perm)],
			issuedAt: claims.iat,
			expiresAt: claims.exp,
			tokenId: claims.jti,
			requestId: claims.rid !== undefined && /^[\x21-\x7e]{1,128}$/.test(claims.rid) ? claims.rid : undefined,
		};
	}

	static #classify(error: unknown, audience: string): RtcError {
		if (error instanceof errors.JWTExpired) {
			return unauthorized("TOKEN_EXPIRED", "The call token has expired: ask the api to join again.");
		}
		if (error instanceof errors.JWTClaimValidationFailed) {
			switch (error.claim) {
				case "aud":
					return unauthorized("INVALID_TOKEN", `The call token's audience is not "${audience}".`);
				case "iss":
					return unauthorized("INVALID_TOKEN", "The call token was not issued by this node's api.");
				case "iat":
				case "nbf":
					return unauthorized("INVALID_TOKEN", "The call token is not valid yet.");
				default:
					return unauthorized("INVALID_TOKEN", `The call token's "${error.claim}" claim is missing or invalid.`);
			}
		}
		if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
			return unauthorized("INVALID_TOKEN", "The call token is signed by an unknown key.");
		}
		if (error instanceof errors.JWSSignatureVerificationFailed) {
			return unauthorized("INVALID_TOKEN", "The call token's signature is invalid.");
		}
		if (error instanceof errors.JOSEAlgNotAllowed) {
			return unauthorized("INVALID_TOKEN", "The call token must be signed with EdDSA.");
		}
		if (
			error instanceof errors.JWKSTimeout ||
			error instanceof errors.JWKSInvalid ||
			// jose's generic error: the JWKS answer was not 200 or not JSON.
			(error instanceof errors.JOSEError && error.code === "ERR_JOSE_GENERIC") ||
			// fetch failures (connection refused, DNS…).
			(error instanceof Error && !(error instanceof errors.JOSEError))
		) {
			// The key set could not be fetched or read: fail closed, retryable.
			return new RtcError(
				"SERVICE_UNAVAILABLE",
				"The media node cannot verify call tokens right now; try again.",
				RTC_CLOSE_CODES.TRY_AGAIN_LATER,
			);
		}

		return unauthorized("INVALID_TOKEN", "The call token is not valid.");
	}
}
