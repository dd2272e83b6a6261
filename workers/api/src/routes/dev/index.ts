import { createRoute } from "@hono/zod-openapi";
import { desc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { outboundEmails } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { createRouter, errorResponses, jsonResponse } from "../../openapi.ts";

export const MAILBOX_LIMIT = 50;

const MailboxEmail = z.object({
	id: z.string(),
	to: z.string(),
	template: z.string(),
	subject: z.string(),
	text: z.string(),
	html: z.string(),
	createdAt: z.iso.datetime(),
	sentAt: z.iso.datetime().nullable(),
});

const mailbox = createRoute({
	method: "get",
	path: "/dev/mailbox",
	tags: ["Development"],
	summary: "Emails the api sent, newest first (dev environment only; 404 elsewhere). JSON with ?to=, else HTML",
	request: { query: z.object({ to: z.string().max(254).optional(), format: z.enum(["json", "html"]).optional() }) },
	responses: { 200: jsonResponse(z.object({ emails: z.array(MailboxEmail) }), "Emails"), ...errorResponses(404) },
});

const esc = (s: string) =>
	s.replace(
		/[&<>"']/g,
		(ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
	);

export const devRoutes = createRouter().openapi(mailbox, async (c) => {
	if (!["dev", "test"].includes(c.var.config.environment)) {
		throw new ApiError(404, "NOT_FOUND", `No route for GET ${c.req.path}.`);
	}
	const { to, format } = c.req.valid("query");
	const rows = await c.var.db
		.select()
		.from(outboundEmails)
		.where(to ? eq(sql`lower(${outboundEmails.toEmail})`, to.toLowerCase()) : undefined)
		.orderBy(desc(outboundEmails.createdAt))
		.limit(MAILBOX_LIMIT);
	const emails = rows.map((r) => ({
		id: r.id,
		to: r.toEmail,
		template: r.template,
		subject: r.subject,
		text: r.textBody,
		html: r.htmlBody,
		createdAt: r.createdAt.toISOString(),
		sentAt: r.sentAt?.toISOString() ?? null,
	}));
	if (format === "json" || (to && format !== "html")) return c.json({ emails }, 200);
	const nonce = crypto.randomUUID().replaceAll("-", "");
	c.header("content-security-policy", `default-src 'none'; style-src 'nonce-${nonce}'; frame-ancestors 'none'`);
	return c.html(
		`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dev mailbox</title>
<style nonce="${nonce}">body{font:16px/1.5 system-ui,sans-serif;max-width:50rem;margin:auto;padding:1rem}article{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}pre{white-space:pre-wrap}</style>
</head><body><h1>Dev mailbox</h1><p>${emails.length} most recent emails${to ? ` to ${esc(to)}` : ""}. JSON: <code>?to=&lt;email&gt;</code>.</p>
${emails.map((e) => `<article><h2>${esc(e.subject)}</h2><p>To <strong>${esc(e.to)}</strong>, ${esc(e.createdAt)}</p><pre>${esc(e.text)}</pre></article>`).join("")}
</body></html>`,
	) as never;
});
