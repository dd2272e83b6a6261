// Request signing between the media node and the api (both directions).
//
// Every signed request carries
//   x-sc-node-id:   the media node's id (MEDIA_NODE_ID)
//   x-sc-timestamp: unix time in whole seconds, as decimal digits
//   x-sc-signature: "v1=" + lowercase hex of
//                   HMAC-SHA256(key = UTF-8 bytes of MEDIA_NODE_SECRET,
//                               message = timestamp + "." + raw request body)
// where the raw body is the exact bytes sent (UTF-8 JSON; "" for no body).
// A receiver recomputes the HMAC over the bytes it received, compares in
// constant time, and refuses timestamps more than SIGNATURE_TOLERANCE_SECONDS
// away from its clock.

import { createHmac, timingSafeEqual } from "node:crypto";

export const NODE_ID_HEADER = "x-sc-node-id";
export const TIMESTAMP_HEADER = "x-sc-timestamp";
export const SIGNATURE_HEADER = "x-sc-signature";
export const SIGNATURE_VERSION = "v1";
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** The exact string that is HMAC'd: `${timestamp}.${rawBody}`. */
export function signingString(timestamp: string, rawBody: string): string {
	return `${timestamp}.${rawBody}`;
}

/** `v1=<hex HMAC-SHA256(secret, timestamp + "." + rawBody)>`. */
export function computeSignature(secret: string, timestamp: string, rawBody: string): string {
	const mac = createHmac("sha256", Buffer.from(secret, "utf8"))
		.update(signingString(timestamp, rawBody), "utf8")
		.digest("hex");

	return `${SIGNATURE_VERSION}=${mac}`;
}

/** The three headers for a request with this body, signed now (or at `nowMs`). */
export function signedHeaders(
	nodeId: string,
	secret: string,
	rawBody: string,
	nowMs: number = Date.now(),
): Record<string, string> {
	const timestamp = String(Math.floor(nowMs / 1000));

	return {
		[NODE_ID_HEADER]: nodeId,
		[TIMESTAMP_HEADER]: timestamp,
		[SIGNATURE_HEADER]: computeSignature(secret, timestamp, rawBody),
	};
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/** Checks a signed request's timestamp and signature header values against its raw body. */
export function verifySignature(
	secret: string,
	timestamp: string | undefined,
	signature: string | undefined,
	rawBody: string,
	nowMs: number = Date.now(),
	toleranceSeconds: number = SIGNATURE_TOLERANCE_SECONDS,
): SignatureCheck {
	if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) {
		return { ok: false, reason: `missing or malformed ${TIMESTAMP_HEADER}` };
	}
	if (Math.abs(Math.floor(nowMs / 1000) - Number(timestamp)) > toleranceSeconds) {
		return { ok: false, reason: `${TIMESTAMP_HEADER} is outside the allowed clock skew` };
	}
	if (signature === undefined) {
		return { ok: false, reason: `missing ${SIGNATURE_HEADER}` };
	}

	const expected = Buffer.from(computeSignature(secret, timestamp, rawBody), "utf8");
	// Several comma-separated signatures are allowed (e.g. during secret rotation).
	const offered = signature.split(",").map((s) => Buffer.from(s.trim(), "utf8"));

	for (const candidate of offered) {
		if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
			return { ok: true };
		}
	}

	return { ok: false, reason: "signature mismatch" };
}
