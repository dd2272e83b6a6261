// Email providers: one interface, chosen by EMAIL_PROVIDER.

export interface EmailMessage {
	/** The outbox id; providers that support it use it as the idempotency key. */
	id: string;
	from: string;
	to: string;
	subject: string;
	text: string;
	html: string;
}

export type EmailOutcome =
	| { status: "sent"; providerId?: string }
	/** Transient (timeouts, 429, 5xx, SMTP 4xx): retried with back-off. */
	| { status: "retry"; reason: string; retryAfterSeconds?: number }
	/** Refused for good (validation errors, SMTP 5xx): the email is marked failed and dead-lettered. */
	| { status: "rejected"; reason: string };

export interface EmailProvider {
	readonly name: string;
	/** One outcome per message, in order. Sends as few requests as the provider allows. */
	send(messages: EmailMessage[]): Promise<EmailOutcome[]>;
}

/** `Name <addr@host>` or `addr@host` → `addr@host`. */
export function addressOf(mailbox: string): string {
	const m = /<([^<>\s]+@[^<>\s]+)>\s*$/.exec(mailbox);
	return (m?.[1] ?? mailbox).trim();
}
