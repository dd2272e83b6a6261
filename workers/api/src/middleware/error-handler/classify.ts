import { DrizzleQueryError } from "drizzle-orm/errors";
import { TimeoutError } from "../../lib/timeout.ts";

/** SQLSTATE classes meaning "the database is not there right now", not "your query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/;
const CONNECTION_FAILURE =
	/connect|terminated|timeout|timed out|ECONNREFUSED|ECONNRESET|websocket|socket|network connection lost/i;

function sqlState(e: unknown): string | undefined {
	const code = (e as { code?: unknown } | null)?.code;
	return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** True when an error means a dependency could not be reached, so the answer is 503, not 500. */
export function isUnavailable(error: unknown): boolean {
	let e: unknown = error;
	for (let depth = 0; e && depth < 5; depth++) {
		if (e instanceof TimeoutError) return true;
		const state = sqlState(e);
		if (state) return UNAVAILABLE_SQLSTATE.test(state);
		// The server answered every query it saw with a SQLSTATE; a failed query
		// without one never reached it (refused socket, dropped WebSocket).
		if (e instanceof DrizzleQueryError && !sqlState(e.cause)) return true;
		if (e instanceof Error && CONNECTION_FAILURE.test(e.message)) return true;
		e = (e as { cause?: unknown }).cause;
	}
	return false;
}
