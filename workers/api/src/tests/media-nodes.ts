// Requests as a media node sends them to the api: a JSON body signed with the
// shared MEDIA_NODE_SECRET over timestamp and body (calls/node-signature.ts).
import { env, SELF } from "cloudflare:test";
import { signNodeRequest } from "../calls/node-signature.ts";

export interface NodeRequestOptions {
	secret?: string;
	timestamp?: string;
	requestId?: string;
}

export async function signedNodeRequest(
	path: string,
	body: Record<string, unknown>,
	options: NodeRequestOptions = {},
): Promise<Response> {
	const text = JSON.stringify(body);
	const timestamp = options.timestamp ?? String(Math.floor(Date.now() / 1000));
	return SELF.fetch(`http://api.test${path}`, {
		method: "POST",
		headers: {
			"content-type": "application/json",
			...(options.requestId && { "x-request-id": options.requestId }),
			"x-sc-node-id": String(body.nodeId),
			"x-sc-timestamp": timestamp,
			"x-sc-signature": await signNodeRequest(options.secret ?? env.MEDIA_NODE_SECRET ?? "", timestamp, text),
		},
		body: text,
	});
}

/** A media node's heartbeat (registration and load). */
export function nodeHeartbeat(body: Record<string, unknown>, options?: NodeRequestOptions): Promise<Response> {
	return signedNodeRequest("/internal/media-nodes/heartbeat", body, options);
}
