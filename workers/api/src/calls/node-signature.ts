// Requests between media nodes and the api are signed with MEDIA_NODE_SECRET:
// x-sc-signature: v1=<hex HMAC-SHA256(secret, "<x-sc-timestamp>.<raw body>")>.

export const SIGNATURE_TOLERANCE_SECONDS = 60;

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

export async function signNodeRequest(secret: string, timestamp: string, body: string): Promise<string> {
	const key = await crypto.subtle.importKey(
		"raw",
		new TextEncoder().encode(secret),
		{ name: "HMAC", hash: "SHA-256" },
		false,
		["sign"],
	);
	const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${timestamp}.${body}`)));
	return `v1=${hex(mac)}`;
}

/** Constant-time check of the signature and a fresh timestamp. */
export async function verifyNodeRequest(
	secret: string,
	timestamp: string | undefined,
	signature: string | undefined,
	body: string,
	now = Date.now(),
): Promise<boolean> {
	if (!timestamp || !signature || !/^\d{9,12}$/.test(timestamp)) return false;
	if (Math.abs(now / 1000 - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) return false;
	const expected = await signNodeRequest(secret, timestamp, body);
	if (expected.length !== signature.length) return false;
	let diff = 0;
	for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ signature.charCodeAt(i);
	return diff === 0;
}
