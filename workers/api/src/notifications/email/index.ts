// The email provider EMAIL_PROVIDER names. `dev` sends nothing: the outbox row
// itself is the dev mailbox (GET /dev/mailbox).
import type { EmailConfig } from "../config.ts";
import { ResendProvider } from "./resend.ts";
import { SmtpProvider } from "./smtp.ts";
import { addressOf, type EmailMessage, type EmailOutcome, type EmailProvider } from "./types.ts";

export type { EmailMessage, EmailOutcome, EmailProvider };

export class DevMailboxProvider implements EmailProvider {
	readonly name = "dev";
	async send(messages: EmailMessage[]): Promise<EmailOutcome[]> {
		return messages.map(() => ({ status: "sent" }));
	}
}

export function createEmailProvider(config: EmailConfig): EmailProvider {
	if (config.provider === "resend" && config.resend) {
		return new ResendProvider({ ...config.resend, timeoutMs: config.timeoutMs });
	}
	if (config.provider === "smtp" && config.smtp) {
		return new SmtpProvider(config.smtp, config.timeoutMs, addressOf(config.from).split("@")[1] ?? "localhost");
	}
	return new DevMailboxProvider();
}
