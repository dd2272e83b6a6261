import type { ErrorEnvelope } from "@secureconnect/protocol";

/** An API error as the server described it. */
export class SecureConnectError extends Error {
	readonly status: number;
	readonly code: string;
	readonly requestId: string | undefined;
	readonly details: unknown;

	constructor(status: number, envelope: Partial<ErrorEnvelope["error"]> | undefined) {
		super(envelope?.message ?? `HTTP ${status}`);
		this.name = "SecureConnectError";
		this.status = status;
		this.code = envelope?.code ?? "UNKNOWN";
		this.requestId = envelope?.requestId;
		this.details = envelope?.details;
	}
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HttpOptions {
	baseUrl: string;
	fetch: FetchLike;
	token: () => Promise<string | undefined>;
}

export class Http {
	readonly #options: HttpOptions;

	constructor(options: HttpOptions) {
		this.#options = options;
	}

	get baseUrl(): string {
		return this.#options.baseUrl;
	}

	async request<T>(method: string, path: string, body?: unknown, authenticated = true): Promise<T> {
		const headers: Record<string, string> = {};
		if (body !== undefined) headers["content-type"] = "application/json";
		if (authenticated) {
			const token = await this.#options.token();
			if (token) headers.authorization = `Bearer ${token}`;
		}
		const res = await this.#options.fetch(`${this.#options.baseUrl}${path}`, {
			method,
			headers,
			...(body !== undefined && { body: JSON.stringify(body) }),
		});
		const text = await res.text();
		const parsed = text ? (JSON.parse(text) as unknown) : undefined;
		if (!res.ok) throw new SecureConnectError(res.status, (parsed as ErrorEnvelope | undefined)?.error);
		return parsed as T;
	}
}
