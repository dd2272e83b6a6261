// Resend's HTTP API: POST /emails, or POST /emails/batch for up to 100 at once.
// The Idempotency-Key makes a retried request send nothing new.
import { sha256Hex } from "../../lib/crypto.ts";
import { parseJson, retryAfterSeconds, timedFetch } from "../http.ts";
import { errorReason } from "../push/types.ts";
import type { EmailMessage, EmailOutcome, EmailProvider } from "./types.ts";

export const RESEND_BATCH_LIMIT = 100;

export interface ResendOptions {
	apiKey: string;
	endpoint: string;
	timeoutMs: number;
}

const toResend = (m: EmailMessage) => ({ from: m.from, to: [m.to], subject: m.subject, text: m.text, html: m.html });

export class ResendProvider implements EmailProvider {
	readonly name = "resend";
	readonly #options: ResendOptions;

	constructor(options: ResendOptions) {
		this.#options = options;
	}

	async send(messages: EmailMessage[]): Promise<EmailOutcome[]> {
		const out: EmailOutcome[] = [];
		for (let i = 0; i < messages.length; i += RESEND_BATCH_LIMIT) {
			const chunk = messages.slice(i, i + RESEND_BATCH_LIMIT);
			out.push(...(chunk.length === 1 ? [await this.#one(chunk[0] as EmailMessage)] : await this.#batch(chunk)));
		}
		return out;
	}

	async #post(path: string, idempotencyKey: string, body: unknown) {
		return timedFetch(`Resend ${path}`, this.#options.timeoutMs, `${this.#options.endpoint}${path}`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${this.#options.apiKey}`,
				"content-type": "application/json",
				"idempotency-key": idempotencyKey,
			},
			body: JSON.stringify(body),
		});
	}

	async #one(message: EmailMessage): Promise<EmailOutcome> {
		try {
			const reply = await this.#post("/emails", message.id, toResend(message));
			if (reply.status === 200 || reply.status === 201) {
				const id = (parseJson(reply.text) as { id?: string } | undefined)?.id;
				return { status: "sent", ...(id && { providerId: id }) };
			}
			return failure(reply.status, reply.text, retryAfterSeconds(reply.headers));
		} catch (error) {
			return { status: "retry", reason: `Resend: ${errorReason(error)}` };
		}
	}

	async #batch(messages: EmailMessage[]): Promise<EmailOutcome[]> {
		try {
			const key = `batch-${(await sha256Hex(messages.map((m) => m.id).join(","))).slice(0, 48)}`;
			const reply = await this.#post("/emails/batch", key, messages.map(toResend));
			if (reply.status === 200 || reply.status === 201) {
				const ids = (parseJson(reply.text) as { data?: Array<{ id?: string }> } | undefined)?.data ?? [];
				return messages.map((_, i) => {
					const id = ids[i]?.id;
					return { status: "sent", ...(id && { providerId: id }) };
				});
			}
			const outcome = failure(reply.status, reply.text, retryAfterSeconds(reply.headers));
			// A batch is all or nothing: when one email is refused, find it by sending them one by one.
			if (outcome.status === "rejected") return Promise.all(messages.map((m) => this.#one(m)));
			return messages.map(() => outcome);
		} catch (error) {
			return messages.map(() => ({ status: "retry", reason: `Resend: ${errorReason(error)}` }));
		}
	}
}

function failure(status: number, text: string, retryAfter: number | undefined): EmailOutcome {
	const body = parseJson(text) as { name?: string; message?: string } | undefined;
	const reason = `Resend ${status} ${body?.name ?? ""} ${body?.message ?? ""}`.trim().slice(0, 300);
	// 401/403: a key problem the operator fixes; 409: the same idempotency key is in flight.
	if (status === 429 || status >= 500 || status === 401 || status === 403 || status === 409) {
		return { status: "retry", reason, ...(retryAfter !== undefined && { retryAfterSeconds: retryAfter }) };
	}
	return { status: "rejected", reason };
}
