// TURN REST credentials (draft-uberti-behave-turn-rest): username "<expiry>:<userId>",
// credential base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret checks.
//
// The media nodes probe the TURN servers (media-node/src/TurnProbe.ts) and put
// the results in their heartbeats; with the fresh reports, a TURN URL that
// every report finds down is left out, and when that leaves no TURN URL the
// answer says turn: "unavailable" (STUN only). URLs no report mentions, and
// no reports at all, change nothing.
import { type IceServer, type NodeTurnReport, type TurnStatus, turnUrlKey } from "@secureconnect/protocol";

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

const isTurnUrl = (u: string) => u.startsWith("turn:") || u.startsWith("turns:");

/** TURN is configured: a secret and at least one turn:/turns: URL. */
export function turnConfigured(config: TurnConfig): boolean {
	return Boolean(config.secret) && config.urls.some(isTurnUrl);
}

/**
 * The configured TURN URLs the reports find down: at least one report mentions
 * the URL (compared as turnUrlKey) and none of them says it is up.
 */
export function downTurnUrls(urls: readonly string[], reports: readonly NodeTurnReport[]): Set<string> {
	const upByKey = new Map<string, boolean>();
	for (const report of reports) {
		for (const server of report.servers) {
			const key = turnUrlKey(server.url);
			if (key !== undefined) upByKey.set(key, (upByKey.get(key) ?? false) || server.up);
		}
	}
	return new Set(
		urls.filter((url) => {
			const key = turnUrlKey(url);
			return key !== undefined && upByKey.get(key) === false;
		}),
	);
}

/**
 * ICE servers for a user; without TURN configured, STUN-only (or none) and says so;
 * with `reports` (the media nodes' fresh TURN probe results), TURN servers they all
 * find down are left out, and "unavailable" when none is left.
 */
export async function iceServersFor(
	config: TurnConfig,
	userId: string,
	options: { reports?: readonly NodeTurnReport[]; now?: number } = {},
): Promise<{ iceServers: IceServer[]; ttl: number; turn: TurnStatus }> {
	const now = options.now ?? Date.now();
	const stun = config.urls.filter((u) => u.startsWith("stun:"));
	const stunOnly = stun.length ? [{ urls: stun }] : [];
	const configured = config.urls.filter(isTurnUrl);
	if (!config.secret || configured.length === 0) {
		return { iceServers: stunOnly, ttl: config.ttlSeconds, turn: "not_configured" };
	}
	const down = downTurnUrls(configured, options.reports ?? []);
	const turn = configured.filter((u) => !down.has(u));
	if (turn.length === 0) {
		return { iceServers: stunOnly, ttl: config.ttlSeconds, turn: "unavailable" };
	}
	const username = `${Math.floor(now / 1000) + config.ttlSeconds}:${userId}`;
	const credential = await turnCredential(config.secret, username);
	return {
		// The relay first, and every entry in the contract's shape {urls, username, credential}:
		// a client that reads one entry gets the relay; STUN ignores credentials.
		iceServers: [{ urls: turn, username, credential }, ...(stun.length ? [{ urls: stun, username, credential }] : [])],
		ttl: config.ttlSeconds,
		turn: "ok",
	};
}
