import { TimeoutError } from "../../lib/timeout.ts";

/** SQLSTATE classes meaning "the database is not there right now", not "your query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/;
const CONNECTION_FAILURE =
	/connect|terminated|timeout|timed out|ECONNREFUSED|ECONNRESET|websocket|socket|network connection lost/i;

function* causes(error: unknown): Generator<unknown> {
	let current: unknown = error;
	for (let depth = 0; current && depth < 5; depth++) {
		yield current;
		current = (current as { cause?: unknown }).cause;
	}
}

/** True when an error means a dependency could not be reached, so the answer is 503, not 500. */
export function isUnavailable(error: unknown): boolean {
	for (const e of causes(error)) {
		if (e instanceof TimeoutError) return true;
		const code = (e as { code?: unknown }).code;
		if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_SQLSTATE.test(code);
		if (e instanceof Error && CONNECTION_FAILURE.test(e.message) && !/syntax|relation/i.test(e.message)) {
			return true;
		}
	}
	return false;
}
