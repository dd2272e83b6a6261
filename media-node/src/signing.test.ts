import { describe, expect, it } from "vitest";

import {
	computeSignature,
	NODE_ID_HEADER,
	SIGNATURE_HEADER,
	signedHeaders,
	signingString,
	TIMESTAMP_HEADER,
	verifySignature,
} from "./signing.ts";

const SECRET = "test-secret-0123456789abcdef0123456789";
const BODY = '{"nodeId":"node-1","events":[]}';
// Computed independently:
//   printf '%s' '1700000000.{"nodeId":"node-1","events":[]}' \
//     | openssl dgst -sha256 -hmac 'test-secret-0123456789abcdef0123456789' -hex
const VECTOR = "v1=884c8cae086d07105a5fe9d2b002e97440d23c00f0e8ccf6eb8a6858fe905d90";
const AT = 1_700_000_000_000;

describe("request signing", () => {
	it("signs timestamp + '.' + raw body with HMAC-SHA256, hex, v1= prefix", () => {
		expect(signingString("1700000000", BODY)).toBe(`1700000000.${BODY}`);
		expect(computeSignature(SECRET, "1700000000", BODY)).toBe(VECTOR);
		expect(signedHeaders("node-1", SECRET, BODY, AT + 999)).toEqual({
			[NODE_ID_HEADER]: "node-1",
			[TIMESTAMP_HEADER]: "1700000000",
			[SIGNATURE_HEADER]: VECTOR,
		});
	});

	it("verifies a good signature and refuses tampering, other secrets and stale timestamps", () => {
		expect(verifySignature(SECRET, "1700000000", VECTOR, BODY, AT)).toEqual({ ok: true });
		expect(verifySignature(SECRET, "1700000000", VECTOR, `${BODY} `, AT)).toMatchObject({ ok: false });
		expect(verifySignature(`${SECRET}x`, "1700000000", VECTOR, BODY, AT)).toMatchObject({ ok: false });
		expect(verifySignature(SECRET, "1700000001", VECTOR, BODY, AT)).toMatchObject({ ok: false });
		expect(verifySignature(SECRET, "1700000000", VECTOR.toUpperCase(), BODY, AT)).toMatchObject({ ok: false });
		expect(verifySignature(SECRET, "1700000000", undefined, BODY, AT)).toMatchObject({ ok: false });
		expect(verifySignature(SECRET, undefined, VECTOR, BODY, AT)).toMatchObject({ ok: false });
		expect(verifySignature(SECRET, "17e8", VECTOR, BODY, AT)).toMatchObject({ ok: false });
		// 5 minutes of skew either way.
		expect(verifySignature(SECRET, "1700000000", VECTOR, BODY, AT + 300_000)).toEqual({ ok: true });
		expect(verifySignature(SECRET, "1700000000", VECTOR, BODY, AT + 301_000)).toEqual({
			ok: false,
			reason: "x-sc-timestamp is outside the allowed clock skew",
		});
		expect(verifySignature(SECRET, "1700000000", VECTOR, BODY, AT - 301_000)).toMatchObject({ ok: false });
	});

	it("accepts any one of several comma-separated signatures (secret rotation)", () => {
		const old = computeSignature("an-older-secret-0123456789abcdef01234", "1700000000", BODY);

		expect(verifySignature(SECRET, "1700000000", `${old}, ${VECTOR}`, BODY, AT)).toEqual({ ok: true });
		expect(verifySignature(SECRET, "1700000000", old, BODY, AT)).toMatchObject({ ok: false });
	});

	it("signs the exact bytes: non-ASCII bodies as UTF-8", () => {
		const body = '{"name":"Zoë 🎧"}';
		const signature = computeSignature(SECRET, "1700000000", body);

		expect(verifySignature(SECRET, "1700000000", signature, body, AT)).toEqual({ ok: true });
		expect(verifySignature(SECRET, "1700000000", signature, '{"name":"Zoe 🎧"}', AT)).toMatchObject({ ok: false });
	});
});
