// The Delivery Service reads only the public framing of an MLS message: group
// id, epoch and content type. Content stays opaque.
import { decodeMlsMessage } from "ts-mls";

export interface MlsFraming {
	groupId: string;
	epoch: number;
	contentType: "application" | "proposal" | "commit";
}

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

function bytesOf(base64: string): Uint8Array | undefined {
	try {
		const binary = atob(base64);
		const bytes = new Uint8Array(binary.length);
		for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
		return bytes;
	} catch {
		return undefined;
	}
}

/** RFC 9420 §6: an MLSMessage opens with version mls10 (1) and a wire format (1 public, 2 private). */
const MLS10 = 1;
const FRAMED_WIRE_FORMATS = new Set([1, 2]);

/**
 * Whether the first four bytes can open a public or private MLS message: the
 * first eight base64 characters decide it, so other ciphertext is never
 * decoded whole (most of a send's cost otherwise).
 */
function mayBeFramed(base64: string): boolean {
	const head = bytesOf(base64.slice(0, 8));
	if (!head || head.length < 4) return false;
	const version = ((head[0] as number) << 8) | (head[1] as number);
	const wireFormat = ((head[2] as number) << 8) | (head[3] as number);
	return version === MLS10 && FRAMED_WIRE_FORMATS.has(wireFormat);
}

/** The framing of a public or private MLS message, or undefined when the bytes are not one. */
export function readFraming(base64: string): MlsFraming | undefined {
	if (!mayBeFramed(base64)) return undefined;
	const bytes = bytesOf(base64);
	if (!bytes || bytes.length < 4) return undefined;
	let decoded: ReturnType<typeof decodeMlsMessage>;
	try {
		decoded = decodeMlsMessage(bytes, 0);
	} catch {
		return undefined;
	}
	const message = decoded?.[0];
	if (!message || decoded?.[1] !== bytes.length) return undefined;
	if (message.wireformat === "mls_private_message") {
		const m = message.privateMessage;
		return { groupId: hex(m.groupId), epoch: Number(m.epoch), contentType: m.contentType };
	}
	if (message.wireformat === "mls_public_message") {
		const c = message.publicMessage.content;
		return { groupId: hex(c.groupId), epoch: Number(c.epoch), contentType: c.contentType };
	}
	return undefined;
}

/** True for a Welcome MLSMessage. */
export function isWelcome(base64: string): boolean {
	const bytes = bytesOf(base64);
	if (!bytes) return false;
	try {
		const decoded = decodeMlsMessage(bytes, 0);
		return decoded?.[0]?.wireformat === "mls_welcome" && decoded[1] === bytes.length;
	} catch {
		return false;
	}
}
