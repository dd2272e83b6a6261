// Outbound HTTP for the providers: every call has a deadline, and the whole
// answer (status and body) is read inside it.
import { withTimeout } from "../lib/timeout.ts";

export interface HttpReply {
	status: number;
	headers: Headers;
	text: string;
}

export async function timedFetch(what: string, ms: number, url: string, init: RequestInit): Promise<HttpReply> {
	const controller = new AbortController();
	const work = (async () => {
		const res = await fetch(url, { ...init, signal: controller.signal });
		return { status: res.status, headers: res.headers, text: await res.text() };
	})();
	try {
		return await withTimeout(what, ms, work);
	} catch (error) {
		controller.abort();
		throw error;
	}
}

/** Retry-After as seconds (delta-seconds or an HTTP date), capped; undefined when absent or unreadable. */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
	const value = headers.get("retry-after");
	if (!value) return undefined;
	const seconds = /^\d+$/.test(value.trim()) ? Number(value) : Math.ceil((Date.parse(value) - now) / 1000);
	return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 3600) : undefined;
}

export function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}
