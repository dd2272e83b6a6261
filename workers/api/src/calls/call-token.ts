// Call tokens admit one user to one call on a media node, which verifies them
// against /.well-known/jwks.json. Short-lived: they only open the door.
import { CALL_TOKEN_MAX_TTL_SECONDS, type CallPermission, MEDIA_TOKEN_AUDIENCE } from "@secureconnect/protocol";
import { SignJWT } from "jose";
import { type SigningKeySet, TOKEN_ALGORITHM } from "../config/signing-keys.ts";

export interface CallGrant {
	userId: string;
	callId: string;
	deviceId?: string | undefined;
	permissions: CallPermission[];
	/** The api request that issued the token (claim `rid`), so the media node's log lines can carry it. */
	requestId?: string | undefined;
}

export async function issueCallToken(keys: SigningKeySet, issuer: string, grant: CallGrant): Promise<string> {
	const key = keys.active;
	return new SignJWT({
		cid: grant.callId,
		perm: grant.permissions,
		...(grant.deviceId && { did: grant.deviceId }),
		...(grant.requestId && { rid: grant.requestId }),
	})
		.setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: key.kid, typ: "JWT" })
		.setIssuer(issuer)
		.setAudience(MEDIA_TOKEN_AUDIENCE)
		.setSubject(grant.userId)
		.setIssuedAt()
		.setExpirationTime(`${CALL_TOKEN_MAX_TTL_SECONDS}s`)
		.setJti(crypto.randomUUID())
		.sign(key.privateKey);
}
