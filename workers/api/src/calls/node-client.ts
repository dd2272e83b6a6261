// Api → media node calls, signed like the node's own calls to the api.
import type { Config } from "../config/config.ts";
import type { Logger } from "../lib/logger.ts";
import { withTimeout } from "../lib/timeout.ts";
import { signNodeRequest } from "./node-signature.ts";

export const NODE_CALL_TIMEOUT_MS = 3_000;

/** http(s)://host:port of a node from its ws(s)://host:port/v1/rtc URL. */
export function nodeHttpBase(wsUrl: string): string {
	const url = new URL(wsUrl);
	url.protocol = url.protocol === "wss:" ? "https:" : "http:";
	return url.origin;
}

/** Tells the call's node to close the room (peers get callEnded). Best effort: the call is over either way. */
export async function endOnNode(
	config: Config,
	log: Logger,
	node: { id: string; url: string },
	callId: string,
	requestId: string,
) {
	try {
		const base = nodeHttpBase(node.url);
		const body = JSON.stringify({ callId });
		const timestamp = String(Math.floor(Date.now() / 1000));
		const res = await withTimeout(
			"media node",
			NODE_CALL_TIMEOUT_MS,
			fetch(`${base}/internal/calls/${encodeURIComponent(callId)}/end`, {
				method: "POST",
				headers: {
					"content-type": "application/json",
					"x-request-id": requestId,
					// The node refuses a request signed for another node (they share the secret).
					"x-sc-node-id": node.id,
					"x-sc-timestamp": timestamp,
					"x-sc-signature": await signNodeRequest(config.mediaNodeSecret, timestamp, body),
				},
				body,
			}),
		);
		if (!res.ok && res.status !== 404) log.warn("media node refused to end the call", { callId, status: res.status });
	} catch (error) {
		log.warn("media node unreachable while ending a call", { callId, error });
	}
}
