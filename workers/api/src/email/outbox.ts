// A transactional outbox: the email row is written with the change that caused
// it, then its id goes on the notifications queue for delivery.
import type { Database } from "../db/client.ts";
import { outboundEmails } from "../db/schema/index.ts";
import type { Env } from "../env.ts";
import { newId } from "../lib/ids.ts";
import type { Logger } from "../lib/logger.ts";
import { type EmailTemplate, renderEmail } from "./templates.ts";

export interface EmailJob {
	kind: "email";
	emailId: string;
	requestId: string;
}

export async function queueEmail(
	db: Database,
	env: Env,
	log: Logger,
	requestId: string,
	to: string,
	template: EmailTemplate,
): Promise<void> {
	const rendered = renderEmail(template);
	const id = newId("email");
	await db.insert(outboundEmails).values({
		id,
		toEmail: to,
		template: template.name,
		subject: rendered.subject,
		textBody: rendered.text,
		htmlBody: rendered.html,
		requestId,
	});
	try {
		await env.NOTIFICATIONS.send({ kind: "email", emailId: id, requestId } satisfies EmailJob);
	} catch (error) {
		// The row stays in the outbox; the scheduled sweep re-enqueues it.
		log.warn("email enqueue failed", { emailId: id, error });
	}
}
