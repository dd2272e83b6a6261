// TURN server URLs (RFC 7065): `turn:host[:port][?transport=udp|tcp]` and
// `turns:host[:port][?transport=tcp]`. The media node probes these URLs and
// the api matches the node's reports against its own TURN_URLS, so both parse
// them here. Keep this file free of Node APIs: it also compiles for Workers.

export const TURN_DEFAULT_PORT = 3478;
export const TURNS_DEFAULT_PORT = 5349;

export interface TurnUrl {
	/** `turns:` (TLS over TCP). */
	secure: boolean;
	/** Host name or IP address, without brackets, lower case. */
	host: string;
	port: number;
	transport: "udp" | "tcp";
}

/** Parses a `turn:`/`turns:` URL; undefined for anything else (stun:, garbage, DTLS). */
export function parseTurnUrl(url: string): TurnUrl | undefined {
	const m = /^(turns?):(\[[0-9A-Fa-f:.]+\]|[^:?[\]/@\s]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/i.exec(url.trim());
	if (!m?.[1] || !m[2]) return undefined;
	const secure = m[1].toLowerCase() === "turns";
	const transport = (m[4]?.toLowerCase() ?? (secure ? "tcp" : "udp")) as "udp" | "tcp";
	// TURN over DTLS (`turns:…?transport=udp`) is not something browsers speak.
	if (secure && transport === "udp") return undefined;
	const port = m[3] === undefined ? (secure ? TURNS_DEFAULT_PORT : TURN_DEFAULT_PORT) : Number(m[3]);
	if (port < 1 || port > 65535) return undefined;
	const host = m[2].replace(/^\[|\]$/g, "").toLowerCase();
	return { secure, host, port, transport };
}

/** One spelling per server and transport: `turn:host:3478` and `turn:HOST:3478?transport=udp` match. */
export function turnUrlKey(url: string): string | undefined {
	const parsed = parseTurnUrl(url);
	if (!parsed) return undefined;
	const host = parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host;
	return `${parsed.secure ? "turns" : "turn"}:${host}:${parsed.port}?transport=${parsed.transport}`;
}
