// Access tokens: EdDSA JWTs with kid, iss, aud, sub, sid, iat, exp (≤ 15 min).
import type { SessionId, UserId } from "@secureconnect/protocol";
import { errors, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { type SigningKeySet, TOKEN_ALGORITHM } from "../config/signing-keys.ts";
import { ApiError } from "../lib/api-error.ts";

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
export const CLOCK_SKEW_SECONDS = 60;
export const ACCESS_TOKEN_AUDIENCE = "secureconnect-api";
export const DEFAULT_ISSUER = "secureconnect";

export interface AccessClaims {
	userId: UserId;
	sessionId: SessionId;
}

export async function issueAccessToken(keys: SigningKeySet, issuer: string, claims: AccessClaims): Promise<string> {
	const key = keys.active;
	return new SignJWT({ sid: claims.sessionId })
		.setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: key.kid, typ: "at+jwt" })
		.setIssuer(issuer)
		.setAudience(ACCESS_TOKEN_AUDIENCE)
		.setSubject(claims.userId)
		.setIssuedAt()
		.setExpirationTime(`${ACCESS_TOKEN_TTL_SECONDS}s`)
		.setJti(crypto.randomUUID())
		.sign(key.privateKey);
}

export async function verifyAccessToken(keys: SigningKeySet, issuer: string, token: string): Promise<AccessClaims> {
	let payload: JWTPayload;
	try {
		({ payload } = await jwtVerify(
			token,
			(header) => {
				const key = header.kid ? keys.byKid(header.kid) : undefined;
				if (!key) throw new errors.JWKSNoMatchingKey();
				return key.publicKey;
			},
			{
				algorithms: [TOKEN_ALGORITHM],
				issuer,
				audience: ACCESS_TOKEN_AUDIENCE,
				clockTolerance: CLOCK_SKEW_SECONDS,
				maxTokenAge: ACCESS_TOKEN_TTL_SECONDS + CLOCK_SKEW_SECONDS,
				requiredClaims: ["sub", "sid", "exp", "iat"],
				typ: "at+jwt",
			},
		));
	} catch (error) {
		if (error instanceof errors.JWTExpired) throw new ApiError(401, "TOKEN_EXPIRED", "The access token has expired.");
		throw new ApiError(401, "INVALID_TOKEN", "The access token is not valid.");
	}
	if (typeof payload.sub !== "string" || typeof payload.sid !== "string") {
		throw new ApiError(401, "INVALID_TOKEN", "The access token is not valid.");
	}
	return { userId: payload.sub as UserId, sessionId: payload.sid as SessionId };
}
