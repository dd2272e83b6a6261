// Pages that emailed links open: /verify-email?token= and /reset-password?token=.
import { PASSWORD_MIN_LENGTH } from "@secureconnect/protocol";
import { describeError, publicClient } from "../api.ts";
import { busy, field, h } from "../dom.ts";
import { alertBox, heading, type Screen } from "./screen.ts";

function shell(title: string, ...content: HTMLElement[]): Screen {
	return {
		title,
		element: h("section", { class: "auth" }, h("p", { class: "brand" }, "SecureConnect"), heading(title), ...content),
	};
}

/** Confirms the address with the token from the link; a code from the email can be typed too. */
export function verifyEmailScreen(token: string | null): Screen {
	const status = h("div", { role: "status", class: "stack" });
	const code = h("input", { name: "token", required: true, autocomplete: "one-time-code", spellcheck: false });
	const alert = alertBox();
	const form = h(
		"form",
		{ class: "card stack" },
		alert.element,
		field("Code from the email", code).wrapper,
		h("button", { type: "submit", class: "primary" }, "Confirm email"),
	);
	const confirm = async (value: string) => {
		try {
			const client = await publicClient();
			await client.http.request("POST", "/v1/auth/verify-email", { token: value }, false);
			form.hidden = true;
			status.replaceChildren(
				h("p", { class: "alert alert-ok" }, "Your email address is confirmed."),
				h("p", {}, h("a", { href: "/signin", class: "button primary" }, "Sign in")),
			);
		} catch (error) {
			status.replaceChildren();
			form.hidden = false;
			alert.show(`${describeError(error)} The link may have expired or been used already.`);
		}
	};
	form.addEventListener("submit", (event) => {
		event.preventDefault();
		void busy(form, () => confirm(code.value.trim()));
	});
	if (token) {
		form.hidden = true;
		status.append(h("p", {}, "Confirming your email address…"));
		void confirm(token);
	}
	return shell("Confirm your email", status, form);
}

export function resetPasswordScreen(token: string | null): Screen {
	const password = h("input", {
		type: "password",
		name: "password",
		required: true,
		autocomplete: "new-password",
		minlength: String(PASSWORD_MIN_LENGTH),
	});
	const again = h("input", { type: "password", name: "again", required: true, autocomplete: "new-password" });
	const code = h("input", { name: "token", required: true, value: token ?? "", spellcheck: false });
	const alert = alertBox();
	const againField = field("Repeat the new password", again);
	const form = h(
		"form",
		{ class: "card stack" },
		alert.element,
		token ? null : field("Code from the email", code).wrapper,
		field("New password", password, `At least ${PASSWORD_MIN_LENGTH} characters.`).wrapper,
		againField.wrapper,
		h("button", { type: "submit", class: "primary" }, "Set new password"),
	);
	const done = h("div", { role: "status" });
	form.addEventListener("submit", (event) => {
		event.preventDefault();
		againField.setError(undefined);
		if (password.value !== again.value) {
			againField.setError("The two passwords are different.");
			again.focus();
			return;
		}
		void busy(form, async () => {
			try {
				const client = await publicClient();
				await client.http.request(
					"POST",
					"/v1/auth/password/reset",
					{ token: code.value.trim(), password: password.value },
					false,
				);
				form.hidden = true;
				done.replaceChildren(
					h("p", { class: "alert alert-ok" }, "Your password is changed and every session was signed out."),
					h("p", {}, h("a", { href: "/signin", class: "button primary" }, "Sign in")),
				);
			} catch (error) {
				alert.show(describeError(error));
			}
		});
	});
	return shell("Choose a new password", done, form);
}
