// A small STUN/TURN message codec (RFC 8489 STUN, RFC 8656 TURN), enough for
// the TURN probe: build requests with MESSAGE-INTEGRITY (HMAC-SHA1, long-term
// key MD5(username:realm:password)) and FINGERPRINT, and read responses
// (ERROR-CODE, REALM, NONCE, XOR-*-ADDRESS, LIFETIME) with their integrity
// checked. Messages are Buffers; nothing here does I/O.
//
//   0                   1                   2                   3
//   |0 0|  message type (14 bits)   |        message length         |
//   |                  magic cookie 0x2112A442                      |
//   |                transaction id (96 bits)                       |
//   attributes: type (16) | length (16) | value, padded to 4 bytes

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { crc32 } from "node:zlib";

export const HEADER_BYTES = 20;
export const MAGIC_COOKIE = 0x2112a442;
const FINGERPRINT_XOR = 0x5354554e;
const INTEGRITY_BYTES = 20;

export const StunMethod = { binding: 0x001, allocate: 0x003, refresh: 0x004 } as const;

export type StunClass = "request" | "indication" | "success" | "error";
const CLASS_BITS: Record<StunClass, number> = { request: 0, indication: 1, success: 2, error: 3 };
const CLASSES: StunClass[] = ["request", "indication", "success", "error"];

export const StunAttr = {
	MAPPED_ADDRESS: 0x0001,
	USERNAME: 0x0006,
	MESSAGE_INTEGRITY: 0x0008,
	ERROR_CODE: 0x0009,
	UNKNOWN_ATTRIBUTES: 0x000a,
	LIFETIME: 0x000d,
	XOR_PEER_ADDRESS: 0x0012,
	REALM: 0x0014,
	NONCE: 0x0015,
	XOR_RELAYED_ADDRESS: 0x0016,
	REQUESTED_TRANSPORT: 0x0019,
	XOR_MAPPED_ADDRESS: 0x0020,
	SOFTWARE: 0x8022,
	FINGERPRINT: 0x8028,
} as const;

/** IANA protocol number of UDP, the only REQUESTED-TRANSPORT RFC 8656 defines. */
export const TRANSPORT_UDP = 17;

export type StunAttribute = { type: number; value: Buffer };

export type StunMessage = {
	method: number;
	class: StunClass;
	/** 12 bytes. */
	transactionId: Buffer;
	attributes: StunAttribute[];
};

export type TransportAddress = { family: "IPv4" | "IPv6"; address: string; port: number };

export class StunDecodeError extends Error {
	override name = "StunDecodeError";
}

export function newTransactionId(): Buffer {
	return randomBytes(12);
}

/** The 14-bit message type: method bits M0-M11 interleaved with class bits C0 C1. */
export function messageType(method: number, cls: StunClass): number {
	const c = CLASS_BITS[cls];

	return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

function splitType(type: number): { method: number; class: StunClass } {
	const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
	const c = ((type >> 4) & 1) | ((type >> 7) & 2);

	return { method, class: CLASSES[c] ?? "request" };
}

/** The long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
	return createHash("md5").update(`${username}:${realm}:${password}`, "utf8").digest();
}

// --- attribute values ---------------------------------------------------------

export function stringAttr(type: number, value: string): StunAttribute {
	return { type, value: Buffer.from(value, "utf8") };
}

export function uint32Attr(type: number, value: number): StunAttribute {
	const buf = Buffer.alloc(4);

	buf.writeUInt32BE(value >>> 0);

	return { type, value: buf };
}

/** REQUESTED-TRANSPORT: protocol number, then 3 reserved bytes. */
export function requestedTransportAttr(protocol: number = TRANSPORT_UDP): StunAttribute {
	return { type: StunAttr.REQUESTED_TRANSPORT, value: Buffer.from([protocol, 0, 0, 0]) };
}

/** ERROR-CODE: 21 reserved bits, class (hundreds), number (0-99), then a UTF-8 reason. */
export function errorCodeAttr(code: number, reason: string): StunAttribute {
	const head = Buffer.from([0, 0, Math.floor(code / 100) & 0x07, code % 100]);

	return { type: StunAttr.ERROR_CODE, value: Buffer.concat([head, Buffer.from(reason, "utf8")]) };
}

function xorKey(transactionId: Buffer): Buffer {
	const key = Buffer.alloc(16);

	key.writeUInt32BE(MAGIC_COOKIE, 0);
	transactionId.copy(key, 4);

	return key;
}

/** XOR-MAPPED-ADDRESS / XOR-RELAYED-ADDRESS / XOR-PEER-ADDRESS value. */
export function xorAddressAttr(type: number, address: TransportAddress, transactionId: Buffer): StunAttribute {
	const bytes = ipBytes(address.address);
	const key = xorKey(transactionId);
	const value = Buffer.alloc(4 + bytes.length);

	value.writeUInt8(bytes.length === 4 ? 0x01 : 0x02, 1);
	value.writeUInt16BE(address.port ^ (MAGIC_COOKIE >>> 16), 2);
	for (let i = 0; i < bytes.length; i++) {
		value[4 + i] = (bytes[i] ?? 0) ^ (key[i] ?? 0);
	}

	return { type, value };
}

export function decodeXorAddress(value: Buffer, transactionId: Buffer): TransportAddress {
	const family = value.length >= 4 ? value.readUInt8(1) : 0;
	const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;

	if (size === 0 || value.length !== 4 + size) {
		throw new StunDecodeError("bad XOR address attribute");
	}

	const key = xorKey(transactionId);
	const bytes = Buffer.alloc(size);

	for (let i = 0; i < size; i++) {
		bytes[i] = (value[4 + i] ?? 0) ^ (key[i] ?? 0);
	}

	return {
		family: size === 4 ? "IPv4" : "IPv6",
		address: formatIp(bytes),
		port: value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16),
	};
}

function ipBytes(address: string): Buffer {
	if (isIPv4(address)) {
		return Buffer.from(address.split(".").map(Number));
	}
	if (!isIPv6(address)) {
		throw new TypeError(`not an IP address: ${address}`);
	}

	// Expand "::" and an embedded IPv4 tail into eight 16-bit groups.
	let text = address;
	const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];

	if (v4) {
		const [a = 0, b = 0, c = 0, d = 0] = v4.split(".").map(Number);

		text = `${text.slice(0, -v4.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
	}

	const [head = "", tail] = text.split("::");
	const headGroups = head ? head.split(":") : [];
	const tailGroups = tail === undefined ? [] : tail ? tail.split(":") : [];
	const zeros = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill("0");
	const groups = [...headGroups, ...zeros, ...tailGroups];
	const out = Buffer.alloc(16);

	groups.forEach((group, i) => {
		out.writeUInt16BE(Number.parseInt(group, 16), i * 2);
	});

	return out;
}

function formatIp(bytes: Buffer): string {
	if (bytes.length === 4) {
		return [...bytes].join(".");
	}

	const groups: string[] = [];

	for (let i = 0; i < 16; i += 2) {
		groups.push(bytes.readUInt16BE(i).toString(16));
	}

	// Shorten the longest run of zero groups (RFC 5952).
	let best = -1;
	let bestLength = 1;

	for (let i = 0; i < 8; ) {
		let j = i;

		while (j < 8 && groups[j] === "0") j++;
		if (j - i > bestLength) {
			best = i;
			bestLength = j - i;
		}
		i = j === i ? i + 1 : j;
	}

	if (best < 0) {
		return groups.join(":");
	}

	return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLength).join(":")}`;
}

// --- messages -----------------------------------------------------------------

export type EncodeOptions = {
	/** Adds MESSAGE-INTEGRITY (HMAC-SHA1 with this key) after the attributes. */
	integrityKey?: Buffer;
	/** Adds FINGERPRINT last. */
	fingerprint?: boolean;
};

function pad(length: number): number {
	return (4 - (length % 4)) % 4;
}

/** Encodes a message; MESSAGE-INTEGRITY and FINGERPRINT are computed here, never passed in. */
export function encodeMessage(message: StunMessage, options: EncodeOptions = {}): Buffer {
	if (message.transactionId.length !== 12) {
		throw new TypeError("a STUN transaction id is 12 bytes");
	}

	const parts: Buffer[] = [];

	for (const attribute of message.attributes) {
		if (attribute.value.length > 0xffff) {
			throw new TypeError(`attribute 0x${attribute.type.toString(16)} is too long`);
		}

		const head = Buffer.alloc(4);

		head.writeUInt16BE(attribute.type, 0);
		head.writeUInt16BE(attribute.value.length, 2);
		parts.push(head, attribute.value, Buffer.alloc(pad(attribute.value.length)));
	}

	const header = Buffer.alloc(HEADER_BYTES);

	header.writeUInt16BE(messageType(message.method, message.class), 0);
	header.writeUInt32BE(MAGIC_COOKIE, 4);
	message.transactionId.copy(header, 8);

	let out = Buffer.concat([header, ...parts]);

	if (options.integrityKey) {
		// The length covers everything up to and including MESSAGE-INTEGRITY.
		out.writeUInt16BE(out.length - HEADER_BYTES + 4 + INTEGRITY_BYTES, 2);

		const mac = createHmac("sha1", options.integrityKey).update(out).digest();
		const head = Buffer.alloc(4);

		head.writeUInt16BE(StunAttr.MESSAGE_INTEGRITY, 0);
		head.writeUInt16BE(INTEGRITY_BYTES, 2);
		out = Buffer.concat([out, head, mac]);
	}

	if (options.fingerprint) {
		out.writeUInt16BE(out.length - HEADER_BYTES + 8, 2);

		const tail = Buffer.alloc(8);

		tail.writeUInt16BE(StunAttr.FINGERPRINT, 0);
		tail.writeUInt16BE(4, 2);
		tail.writeUInt32BE((crc32(out) ^ FINGERPRINT_XOR) >>> 0, 4);
		out = Buffer.concat([out, tail]);
	}

	out.writeUInt16BE(out.length - HEADER_BYTES, 2);

	return out;
}

/** Total size of the STUN message at the start of `data` (for TCP framing), or undefined without a full header. */
export function frameLength(data: Buffer): number | undefined {
	if (data.length < HEADER_BYTES) {
		return undefined;
	}

	return HEADER_BYTES + data.readUInt16BE(2);
}

/** Decodes one whole message; throws StunDecodeError on anything malformed. */
export function decodeMessage(data: Buffer): StunMessage {
	if (data.length < HEADER_BYTES) {
		throw new StunDecodeError("shorter than a STUN header");
	}

	const type = data.readUInt16BE(0);
	const length = data.readUInt16BE(2);

	if ((type & 0xc000) !== 0) {
		throw new StunDecodeError("the first two bits of a STUN message are zero");
	}
	if (data.readUInt32BE(4) !== MAGIC_COOKIE) {
		throw new StunDecodeError("no STUN magic cookie");
	}
	if (length % 4 !== 0 || HEADER_BYTES + length !== data.length) {
		throw new StunDecodeError(`length ${length} does not match ${data.length - HEADER_BYTES} bytes of attributes`);
	}

	const attributes: StunAttribute[] = [];
	let offset = HEADER_BYTES;

	while (offset < data.length) {
		if (offset + 4 > data.length) {
			throw new StunDecodeError("truncated attribute header");
		}

		const attrType = data.readUInt16BE(offset);
		const attrLength = data.readUInt16BE(offset + 2);
		const end = offset + 4 + attrLength;

		if (end > data.length) {
			throw new StunDecodeError(`attribute 0x${attrType.toString(16)} runs past the message`);
		}
		attributes.push({ type: attrType, value: Buffer.from(data.subarray(offset + 4, end)) });
		offset = end + pad(attrLength);
	}

	return {
		...splitType(type),
		transactionId: Buffer.from(data.subarray(8, HEADER_BYTES)),
		attributes,
	};
}

/** Offset of the first attribute of `type` in an encoded message (-1 when absent). */
function attributeOffset(data: Buffer, type: number): number {
	let offset = HEADER_BYTES;

	while (offset + 4 <= data.length) {
		const attrType = data.readUInt16BE(offset);
		const attrLength = data.readUInt16BE(offset + 2);

		if (attrType === type) {
			return offset;
		}
		offset += 4 + attrLength + pad(attrLength);
	}

	return -1;
}

/**
 * Checks MESSAGE-INTEGRITY of an encoded message with `key`: false when it is
 * absent or wrong. Attributes after it (FINGERPRINT) are not covered.
 */
export function verifyIntegrity(data: Buffer, key: Buffer): boolean {
	const at = attributeOffset(data, StunAttr.MESSAGE_INTEGRITY);

	if (at < 0 || at + 4 + INTEGRITY_BYTES > data.length || data.readUInt16BE(at + 2) !== INTEGRITY_BYTES) {
		return false;
	}

	const covered = Buffer.from(data.subarray(0, at));

	covered.writeUInt16BE(at - HEADER_BYTES + 4 + INTEGRITY_BYTES, 2);

	const expected = createHmac("sha1", key).update(covered).digest();

	return timingSafeEqual(expected, data.subarray(at + 4, at + 4 + INTEGRITY_BYTES));
}

/** Checks FINGERPRINT (CRC-32 of what precedes it, XOR 0x5354554e): false when absent or wrong. */
export function verifyFingerprint(data: Buffer): boolean {
	const at = attributeOffset(data, StunAttr.FINGERPRINT);

	if (at < 0 || at + 8 !== data.length || data.readUInt16BE(at + 2) !== 4) {
		return false;
	}

	return (crc32(data.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0 === data.readUInt32BE(at + 4);
}

// --- reading attributes -------------------------------------------------------

export function attribute(message: StunMessage, type: number): Buffer | undefined {
	return message.attributes.find((a) => a.type === type)?.value;
}

export function stringAttribute(message: StunMessage, type: number): string | undefined {
	return attribute(message, type)?.toString("utf8");
}

export function uint32Attribute(message: StunMessage, type: number): number | undefined {
	const value = attribute(message, type);

	return value?.length === 4 ? value.readUInt32BE(0) : undefined;
}

/** ERROR-CODE as a number (e.g. 401) and its reason phrase. */
export function errorCode(message: StunMessage): { code: number; reason: string } | undefined {
	const value = attribute(message, StunAttr.ERROR_CODE);

	if (!value || value.length < 4) {
		return undefined;
	}

	return { code: (value.readUInt8(2) & 0x07) * 100 + value.readUInt8(3), reason: value.subarray(4).toString("utf8") };
}

export function xorAddressAttribute(message: StunMessage, type: number): TransportAddress | undefined {
	const value = attribute(message, type);

	return value ? decodeXorAddress(value, message.transactionId) : undefined;
}
