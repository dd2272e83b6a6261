import { DEFAULT_MAX_CIPHERTEXT_BYTES, DEFAULT_MAX_MEMBERS } from "@secureconnect/protocol";

/** Realtime limits; each can be set by the variable of the same name. */
export interface RealtimeLimits {
	MAX_CIPHERTEXT_BYTES: number;
	MAX_FRAME_BYTES: number;
	SENDS_PER_SECOND: number;
	SEND_BURST: number;
	MAX_SOCKETS_PER_USER: number;
	MAX_MEMBERS: number;
	IDLE_TIMEOUT_SECONDS: number;
	AUTH_TIMEOUT_SECONDS: number;
	TYPING_THROTTLE_MS: number;
}

export const DEFAULT_LIMITS: RealtimeLimits = {
	MAX_CIPHERTEXT_BYTES: DEFAULT_MAX_CIPHERTEXT_BYTES,
	// A frame carries base64 ciphertext (4/3 larger) plus a little JSON.
	MAX_FRAME_BYTES: Math.ceil((DEFAULT_MAX_CIPHERTEXT_BYTES * 4) / 3) + 1024,
	SENDS_PER_SECOND: 20,
	SEND_BURST: 40,
	MAX_SOCKETS_PER_USER: 10,
	MAX_MEMBERS: DEFAULT_MAX_MEMBERS,
	IDLE_TIMEOUT_SECONDS: 90,
	AUTH_TIMEOUT_SECONDS: 10,
	TYPING_THROTTLE_MS: 1_000,
};

export function realtimeLimits(env: Partial<Record<keyof RealtimeLimits, string | undefined>>): RealtimeLimits {
	const limits = { ...DEFAULT_LIMITS };
	for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof RealtimeLimits>) {
		const raw = env[key];
		const value = raw === undefined ? Number.NaN : Number(raw);
		if (Number.isInteger(value) && value > 0) limits[key] = value;
	}
	if (env.MAX_CIPHERTEXT_BYTES && !env.MAX_FRAME_BYTES) {
		limits.MAX_FRAME_BYTES = Math.ceil((limits.MAX_CIPHERTEXT_BYTES * 4) / 3) + 1024;
	}
	return limits;
}

/** Bytes a base64 string decodes to. */
export function base64Bytes(text: string): number {
	const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
	return Math.floor((text.length * 3) / 4) - padding;
}
