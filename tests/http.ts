// The JSON client the Node-side suites (load test, fuzzer) set up their worlds
// with: a request as a client sends it, and an error naming the answer when it
// is not a success.

export interface CallOptions {
	body?: unknown;
	token?: string | undefined;
}

/** Sends `method path` with an optional JSON body and bearer token; returns the parsed JSON answer (undefined when empty). */
export async function callApi(api: string, method: string, path: string, options: CallOptions = {}): Promise<unknown> {
	const res = await fetch(`${api}${path}`, {
		method,
		headers: {
			...(options.body !== undefined && { "content-type": "application/json" }),
			...(options.token && { authorization: `Bearer ${options.token}` }),
		},
		...(options.body !== undefined && { body: JSON.stringify(options.body) }),
		signal: AbortSignal.timeout(60_000),
	});
	const text = await res.text();
	if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
	return text ? JSON.parse(text) : undefined;
}
