// TURN REST credentials (draft-uberti-behave-turn-rest): username "<expiry>:<userId>",
// credential base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret checks.
import type { IceServer } from "@secureconnect/protocol";

export const DEFAULT_TURN_TTL_SECONDS = 3600;

export interface TurnConfig {
	urls: string[];
	secret: string | undefined;
	ttlSeconds: number;
}

export async function turnCredential(secret: string, username: string): Promise<string> {
	const key = await crypto.subtle.importKey(
		"raw",
		new TextEncoder().encode(secret),
		{ name: "HMAC", hash: "SHA-1" },
		false,
		["sign"],
	);
	const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(username)));
	return btoa(String.fromCharCode(...mac));
}

/** ICE servers for a user; without TURN configured, STUN-only (or none) and says so. */
export async function iceServersFor(
	config: TurnConfig,
	userId: string,
	now = Date.now(),
): Promise<{ iceServers: IceServer[]; ttl: number; turn: "ok" | "not_configured" }> {
	const stun = config.urls.filter((u) => u.startsWith("stun:"));
	const turn = config.urls.filter((u) => u.startsWith("turn:") || u.startsWith("turns:"));
	if (!config.secret || turn.length === 0) {
		return { iceServers: stun.length ? [{ urls: stun }] : [], ttl: config.ttlSeconds, turn: "not_configured" };
	}
	const username = `${Math.floor(now / 1000) + config.ttlSeconds}:${userId}`;
	const credential = await turnCredential(config.secret, username);
	return {
		iceServers: [...(stun.length ? [{ urls: stun }] : []), { urls: turn, username, credential }],
		ttl: config.ttlSeconds,
		turn: "ok",
	};
}
