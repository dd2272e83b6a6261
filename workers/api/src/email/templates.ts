// Email templates in plain text and HTML. They carry links and codes, never message content.

export type EmailTemplate =
	| { name: "verify_email"; displayName: string; token: string; link: string }
	| { name: "reset_password"; displayName: string; token: string; link: string }
	| { name: "new_sign_in"; displayName: string; deviceName: string; when: string };

export interface RenderedEmail {
	subject: string;
	text: string;
	html: string;
}

const esc = (s: string) =>
	s.replace(
		/[&<>"']/g,
		(ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
	);

function layout(title: string, paragraphs: string[]): string {
	return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body style="font-family:system-ui,sans-serif;color:#111;max-width:36rem;margin:auto;padding:1rem">
<h1 style="font-size:1.25rem">${esc(title)}</h1>${paragraphs.map((p) => `<p>${p}</p>`).join("")}
<p style="color:#555;font-size:.875rem">SecureConnect</p></body></html>`;
}

export function renderEmail(template: EmailTemplate): RenderedEmail {
	switch (template.name) {
		case "verify_email":
			return {
				subject: "Confirm your email address",
				text: `Hello ${template.displayName},\n\nConfirm your email address by opening this link within 24 hours:\n${template.link}\n\nOr enter this code: ${template.token}\n\nIf you did not create a SecureConnect account, ignore this email.\n`,
				html: layout("Confirm your email address", [
					`Hello ${esc(template.displayName)},`,
					`<a href="${esc(template.link)}">Confirm your email address</a> within 24 hours.`,
					`Or enter this code: <code>${esc(template.token)}</code>`,
					"If you did not create a SecureConnect account, ignore this email.",
				]),
			};
		case "reset_password":
			return {
				subject: "Reset your password",
				text: `Hello ${template.displayName},\n\nReset your password by opening this link within 30 minutes:\n${template.link}\n\nOr enter this code: ${template.token}\n\nIf you did not ask for this, ignore this email; your password stays as it is.\n`,
				html: layout("Reset your password", [
					`Hello ${esc(template.displayName)},`,
					`<a href="${esc(template.link)}">Reset your password</a> within 30 minutes.`,
					`Or enter this code: <code>${esc(template.token)}</code>`,
					"If you did not ask for this, ignore this email; your password stays as it is.",
				]),
			};
		case "new_sign_in":
			return {
				subject: "New sign-in to your account",
				text: `Hello ${template.displayName},\n\nYour account was just signed in on "${template.deviceName}" (${template.when}).\nIf this was not you, change your password and sign out all sessions.\n`,
				html: layout("New sign-in to your account", [
					`Hello ${esc(template.displayName)},`,
					`Your account was just signed in on <strong>${esc(template.deviceName)}</strong> (${esc(template.when)}).`,
					"If this was not you, change your password and sign out all sessions.",
				]),
			};
	}
}
