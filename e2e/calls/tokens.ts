// Admission checks against the media node from Node: call tokens signed with
// the api's own key (so only the claim under test is wrong) or with a key the
// api never published.
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { APP_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX } from "../../protocol/src/realtime.ts";
import { MEDIA_TOKEN_AUDIENCE } from "../../protocol/src/signaling.ts";

export interface TokenClaims {
	issuer: string;
	userId: string;
	callId: string;
	audience?: string;
	/** Seconds relative to now. */
	iat?: number;
	ttl?: number;
}

/** Signs like the api does (EdDSA, `kid`), with `key` a private JWK (the api's, or a stranger's). */
export async function signCallToken(key: JWK & { kid: string }, claims: TokenClaims): Promise<string> {
	const now = Math.floor(Date.now() / 1000) + (claims.iat ?? 0);
	return await new SignJWT({ cid: claims.callId, perm: ["publish", "subscribe"] })
		.setProtectedHeader({ alg: "EdDSA", kid: key.kid })
		.setIssuer(claims.issuer)
		.setAudience(claims.audience ?? MEDIA_TOKEN_AUDIENCE)
		.setSubject(claims.userId)
		.setIssuedAt(now)
		.setExpirationTime(now + (claims.ttl ?? 60))
		.sign(await importJWK(key, "EdDSA"));
}

export async function strangerKey(): Promise<JWK & { kid: string }> {
	const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
	return { ...(await exportJWK(privateKey)), kid: "k-not-published-by-the-api" };
}

export interface Admission {
	admitted: boolean;
	code?: string;
	message?: string;
	closeCode?: number;
}

/** Opens the signaling socket with `token`; admitted on `ready`, else the node's error frame and close code. */
export async function tryAdmission(url: string, token: string, timeoutMs = 8_000): Promise<Admission> {
	const ws = new WebSocket(url, [APP_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`]);
	return await new Promise((resolve) => {
		const result: Admission = { admitted: false };
		const timer = setTimeout(() => {
			ws.close();
			resolve({ ...result, code: "TIMEOUT" });
		}, timeoutMs);
		ws.addEventListener("message", (event) => {
			const frame = JSON.parse(String(event.data)) as {
				type: string;
				method?: string;
				code?: string;
				message?: string;
			};
			if (frame.type === "notification" && frame.method === "ready") {
				result.admitted = true;
				ws.send(JSON.stringify({ type: "request", id: 1, method: "leave", data: {} }));
			} else if (frame.type === "error") {
				result.code = frame.code;
				result.message = frame.message;
			}
		});
		ws.addEventListener("close", (event) => {
			clearTimeout(timer);
			resolve({ ...result, closeCode: event.code });
		});
	});
}
