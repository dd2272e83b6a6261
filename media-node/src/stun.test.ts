import { describe, expect, it } from "vitest";

import {
	attribute,
	decodeMessage,
	decodeXorAddress,
	encodeMessage,
	errorCode,
	errorCodeAttr,
	frameLength,
	longTermKey,
	messageType,
	newTransactionId,
	requestedTransportAttr,
	StunAttr,
	StunDecodeError,
	StunMethod,
	stringAttr,
	stringAttribute,
	uint32Attr,
	uint32Attribute,
	verifyFingerprint,
	verifyIntegrity,
	xorAddressAttr,
	xorAddressAttribute,
} from "./stun.ts";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");

// RFC 5769 test vectors.
// 2.1 Sample Request: short-term credentials, password "VOkJxbRl1RmTxUk/WvJxBt"
// (USERNAME "evtj:h6vY", padded with spaces as the RFC does).
const SAMPLE_REQUEST = hex(`
	00010058 2112a442 b7e7a701 bc34d686 fa87dfae
	80220010 5354554e 20746573 7420636c 69656e74
	00240004 6e0001ff
	80290008 932ff9b1 51263b36
	00060009 6576746a 3a683676 59202020
	00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
	80280004 e57a3bcf`);
// 2.2 Sample IPv4 Response: XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE = hex(`
	0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
	8022000b 74657374 20766563 746f7220
	00200008 0001a147 e112a643
	00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
	80280004 c07d4c96`);
// 2.3 Sample IPv6 Response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const SAMPLE_IPV6_RESPONSE = hex(`
	01010048 2112a442 b7e7a701 bc34d686 fa87dfae
	8022000b 74657374 20766563 746f7220
	00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
	00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
	80280004 c8fb0b4c`);
// 2.4 Sample Request with Long-Term Authentication: USERNAME "マトリックス", REALM "example.org",
// NONCE "f//499k954d6OL34oL9FSTvy64sA", password "TheMatrIX" (after SASLprep).
const SAMPLE_LONG_TERM_REQUEST = hex(`
	00010060 2112a442 78ad3433 c6ad72c0 29da412e
	00060012 e3839ee3 8388e383 aae38383 e382afe3 82b90000
	0015001c 662f2f34 39396b39 35346436 4f4c3334 6f4c3946 53547679 36347341
	0014000b 6578616d 706c652e 6f726700
	00080014 f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666`);
const SHORT_TERM_KEY = Buffer.from("VOkJxbRl1RmTxUk/WvJxBt", "utf8");

describe("STUN codec", () => {
	it("interleaves method and class bits in the message type", () => {
		expect(messageType(StunMethod.binding, "request")).toBe(0x0001);
		expect(messageType(StunMethod.binding, "success")).toBe(0x0101);
		expect(messageType(StunMethod.allocate, "request")).toBe(0x0003);
		expect(messageType(StunMethod.allocate, "success")).toBe(0x0103);
		expect(messageType(StunMethod.allocate, "error")).toBe(0x0113);
		expect(messageType(StunMethod.refresh, "request")).toBe(0x0004);
		expect(messageType(0x0fff, "indication")).toBe(0x3eff);
	});

	it("decodes the RFC 5769 sample request and checks its integrity and fingerprint", () => {
		const message = decodeMessage(SAMPLE_REQUEST);

		expect(message.method).toBe(StunMethod.binding);
		expect(message.class).toBe("request");
		expect(message.transactionId.toString("hex")).toBe("b7e7a701bc34d686fa87dfae");
		expect(stringAttribute(message, StunAttr.SOFTWARE)).toBe("STUN test client");
		expect(stringAttribute(message, StunAttr.USERNAME)).toBe("evtj:h6vY");
		expect(uint32Attribute(message, 0x0024)).toBe(0x6e0001ff);
		expect(message.attributes.map((a) => a.type)).toEqual([0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]);
		expect(verifyIntegrity(SAMPLE_REQUEST, SHORT_TERM_KEY)).toBe(true);
		expect(verifyIntegrity(SAMPLE_REQUEST, Buffer.from("wrong"))).toBe(false);
		expect(verifyFingerprint(SAMPLE_REQUEST)).toBe(true);

		const tampered = Buffer.from(SAMPLE_REQUEST);

		tampered[30] = 0x00; // a byte of SOFTWARE
		expect(verifyIntegrity(tampered, SHORT_TERM_KEY)).toBe(false);
		expect(verifyFingerprint(tampered)).toBe(false);
	});

	it("decodes the RFC 5769 IPv4 and IPv6 responses' XOR-MAPPED-ADDRESS", () => {
		const v4 = decodeMessage(SAMPLE_IPV4_RESPONSE);

		expect(v4.class).toBe("success");
		expect(stringAttribute(v4, StunAttr.SOFTWARE)).toBe("test vector");
		expect(xorAddressAttribute(v4, StunAttr.XOR_MAPPED_ADDRESS)).toEqual({
			family: "IPv4",
			address: "192.0.2.1",
			port: 32853,
		});
		expect(verifyIntegrity(SAMPLE_IPV4_RESPONSE, SHORT_TERM_KEY)).toBe(true);
		expect(verifyFingerprint(SAMPLE_IPV4_RESPONSE)).toBe(true);

		const v6 = decodeMessage(SAMPLE_IPV6_RESPONSE);

		expect(xorAddressAttribute(v6, StunAttr.XOR_MAPPED_ADDRESS)).toEqual({
			family: "IPv6",
			address: "2001:db8:1234:5678:11:2233:4455:6677",
			port: 32853,
		});
		expect(verifyIntegrity(SAMPLE_IPV6_RESPONSE, SHORT_TERM_KEY)).toBe(true);
		expect(verifyFingerprint(SAMPLE_IPV6_RESPONSE)).toBe(true);
	});

	it("encodes the RFC 5769 long-term request byte for byte (key = MD5(username:realm:password))", () => {
		const username = "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9";
		const key = longTermKey(username, "example.org", "TheMatrIX");
		const encoded = encodeMessage(
			{
				method: StunMethod.binding,
				class: "request",
				transactionId: hex("78ad3433c6ad72c029da412e"),
				attributes: [
					stringAttr(StunAttr.USERNAME, username),
					stringAttr(StunAttr.NONCE, "f//499k954d6OL34oL9FSTvy64sA"),
					stringAttr(StunAttr.REALM, "example.org"),
				],
			},
			{ integrityKey: key },
		);

		expect(encoded.toString("hex")).toBe(SAMPLE_LONG_TERM_REQUEST.toString("hex"));
		expect(verifyIntegrity(SAMPLE_LONG_TERM_REQUEST, key)).toBe(true);
		expect(verifyIntegrity(SAMPLE_LONG_TERM_REQUEST, longTermKey(username, "example.org", "thematrix"))).toBe(false);
	});

	it("round-trips a TURN Allocate with integrity and fingerprint", () => {
		const transactionId = newTransactionId();
		const key = longTermKey("1700000000:probe", "secureconnect.local", "c2VjcmV0");
		const encoded = encodeMessage(
			{
				method: StunMethod.allocate,
				class: "request",
				transactionId,
				attributes: [
					requestedTransportAttr(),
					uint32Attr(StunAttr.LIFETIME, 0),
					stringAttr(StunAttr.USERNAME, "1700000000:probe"),
					stringAttr(StunAttr.REALM, "secureconnect.local"),
					stringAttr(StunAttr.NONCE, "abc"),
				],
			},
			{ integrityKey: key, fingerprint: true },
		);

		expect(encoded.length % 4).toBe(0);
		expect(frameLength(encoded)).toBe(encoded.length);
		expect(frameLength(encoded.subarray(0, 19))).toBeUndefined();
		expect(verifyIntegrity(encoded, key)).toBe(true);
		expect(verifyFingerprint(encoded)).toBe(true);

		const decoded = decodeMessage(encoded);

		expect(decoded.method).toBe(StunMethod.allocate);
		expect(decoded.class).toBe("request");
		expect(decoded.transactionId.equals(transactionId)).toBe(true);
		expect(attribute(decoded, StunAttr.REQUESTED_TRANSPORT)?.toString("hex")).toBe("11000000");
		expect(uint32Attribute(decoded, StunAttr.LIFETIME)).toBe(0);
		expect(stringAttribute(decoded, StunAttr.NONCE)).toBe("abc");
		expect(decoded.attributes.at(-2)?.type).toBe(StunAttr.MESSAGE_INTEGRITY);
		expect(decoded.attributes.at(-1)?.type).toBe(StunAttr.FINGERPRINT);
	});

	it("reads ERROR-CODE and XOR addresses it wrote", () => {
		const transactionId = newTransactionId();
		const message = decodeMessage(
			encodeMessage({
				method: StunMethod.allocate,
				class: "error",
				transactionId,
				attributes: [
					errorCodeAttr(401, "Unauthorized"),
					xorAddressAttr(
						StunAttr.XOR_RELAYED_ADDRESS,
						{ family: "IPv4", address: "10.1.2.3", port: 50000 },
						transactionId,
					),
					xorAddressAttr(
						StunAttr.XOR_PEER_ADDRESS,
						{ family: "IPv6", address: "fe80::1:2", port: 3478 },
						transactionId,
					),
				],
			}),
		);

		expect(message.class).toBe("error");
		expect(errorCode(message)).toEqual({ code: 401, reason: "Unauthorized" });
		expect(xorAddressAttribute(message, StunAttr.XOR_RELAYED_ADDRESS)).toEqual({
			family: "IPv4",
			address: "10.1.2.3",
			port: 50000,
		});
		expect(xorAddressAttribute(message, StunAttr.XOR_PEER_ADDRESS)).toEqual({
			family: "IPv6",
			address: "fe80::1:2",
			port: 3478,
		});
		expect(errorCode(decodeMessage(SAMPLE_IPV4_RESPONSE))).toBeUndefined();
	});

	it("refuses malformed messages", () => {
		const bad = (data: Buffer) => () => decodeMessage(data);

		expect(bad(Buffer.alloc(19))).toThrow(StunDecodeError);
		// Wrong magic cookie.
		expect(bad(hex("0001000000000000b7e7a701bc34d686fa87dfae"))).toThrow(/magic cookie/);
		// Top bits set (an RTP/DTLS packet, not STUN).
		expect(bad(hex("c0010000 2112a442 b7e7a701bc34d686fa87dfae"))).toThrow(StunDecodeError);
		// Length longer than the data.
		expect(bad(SAMPLE_REQUEST.subarray(0, 60))).toThrow(/length/);
		// An attribute running past the end.
		const overrun = hex("00010008 2112a442 b7e7a701bc34d686fa87dfae 00060010 61626364");

		expect(bad(overrun)).toThrow(/past the message/);
		expect(() => decodeXorAddress(Buffer.from([0, 3, 0, 0]), newTransactionId())).toThrow(StunDecodeError);
		// No MESSAGE-INTEGRITY / FINGERPRINT at all.
		expect(verifyIntegrity(SAMPLE_LONG_TERM_REQUEST.subarray(0, 96), SHORT_TERM_KEY)).toBe(false);
		expect(verifyFingerprint(SAMPLE_LONG_TERM_REQUEST)).toBe(false);
	});
});
