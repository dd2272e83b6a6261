// Sign in, sign up and "forgot password".
import { PASSWORD_MIN_LENGTH } from "@secureconnect/protocol";
import { describeError, invalidField, publicClient, SecureConnectError } from "../api.ts";
import { busy, field, h, render } from "../dom.ts";
import { Session } from "../session.ts";
import { alertBox, heading, type Screen } from "./screen.ts";

const KEYS_NOTE =
	"Your encryption keys live only in this browser tab. Reloading or closing it signs you out, and each sign-in is a new device that can't read messages sent before it.";

function input(attrs: Record<string, string | boolean>): HTMLInputElement {
	return h("input", { required: true, ...attrs });
}

export function signInScreen(onSignedIn: (session: Session) => void, notice?: string): Screen {
	const email = input({ type: "email", name: "email", autocomplete: "username" });
	const password = input({ type: "password", name: "password", autocomplete: "current-password" });
	const alert = alertBox();
	const form = h(
		"form",
		{ class: "card stack", "aria-labelledby": "signin-title" },
		alert.element,
		field("Email", email).wrapper,
		field("Password", password).wrapper,
		h("button", { type: "submit", class: "primary" }, "Sign in"),
	);
	form.addEventListener("submit", (event) => {
		event.preventDefault();
		alert.show(undefined);
		void busy(form, async () => {
			try {
				const status = h("p", { class: "hint", role: "status" }, "Signing in and creating this device's keys…");
				form.append(status);
				try {
					onSignedIn(await Session.signIn(email.value.trim(), password.value));
				} finally {
					status.remove();
				}
			} catch (error) {
				alert.show(describeError(error));
				password.select();
			}
		});
	});
	const title = heading("Sign in");
	title.id = "signin-title";
	return {
		title: "Sign in",
		element: h(
			"section",
			{ class: "auth" },
			h("p", { class: "brand" }, "SecureConnect"),
			title,
			notice ? h("p", { class: "alert alert-ok", role: "status" }, notice) : null,
			form,
			h("p", { class: "hint" }, KEYS_NOTE),
			h(
				"p",
				{ class: "links" },
				h("a", { href: "/signup" }, "Create an account"),
				" · ",
				h("a", { href: "/forgot-password" }, "Forgot your password?"),
			),
		),
	};
}

export function signUpScreen(): Screen {
	const displayName = input({ name: "displayName", autocomplete: "name", maxlength: "64" });
	const handle = input({
		name: "handle",
		autocomplete: "username",
		minlength: "3",
		maxlength: "32",
		pattern: "[A-Za-z0-9_.]+",
		autocapitalize: "none",
		spellcheck: false,
	});
	const email = input({ type: "email", name: "email", autocomplete: "email" });
	const password = input({
		type: "password",
		name: "password",
		autocomplete: "new-password",
		minlength: String(PASSWORD_MIN_LENGTH),
	});
	const fields = {
		displayName: field("Your name", displayName, "How others see you."),
		handle: field("Handle", handle, "How people find you: letters, digits, '_' and '.'; 3 to 32 characters."),
		email: field("Email", email, "We send a link to confirm it."),
		password: field(
			"Password",
			password,
			`At least ${PASSWORD_MIN_LENGTH} characters. A few unrelated words make a strong one.`,
		),
	};
	const alert = alertBox();
	const form = h(
		"form",
		{ class: "card stack", "aria-labelledby": "signup-title" },
		alert.element,
		...Object.values(fields).map((f) => f.wrapper),
		h("button", { type: "submit", class: "primary" }, "Create account"),
	);
	const section = h("section", { class: "auth" });
	form.addEventListener("submit", (event) => {
		event.preventDefault();
		alert.show(undefined);
		for (const f of Object.values(fields)) f.setError(undefined);
		void busy(form, async () => {
			try {
				const client = await publicClient();
				await client.register({
					email: email.value.trim(),
					password: password.value,
					handle: handle.value.trim(),
					displayName: displayName.value.trim(),
				});
				const done = heading("Check your email");
				render(
					section,
					h("p", { class: "brand" }, "SecureConnect"),
					done,
					h(
						"p",
						{},
						"We sent a link to ",
						h("strong", {}, email.value.trim()),
						". Open it to confirm your address, then sign in.",
					),
					/^(127\.0\.0\.1|localhost)$/.test(location.hostname)
						? h(
								"p",
								{ class: "hint" },
								"Running locally? Emails land in the ",
								h("a", { href: "/dev/mailbox", target: "_blank" }, "dev mailbox"),
								".",
							)
						: null,
					h("p", {}, h("a", { href: "/signin", class: "button primary" }, "Go to sign in")),
				);
				done.focus();
			} catch (error) {
				const message = describeError(error);
				const target =
					error instanceof SecureConnectError && error.code === "EMAIL_TAKEN"
						? "email"
						: error instanceof SecureConnectError && error.code === "HANDLE_TAKEN"
							? "handle"
							: error instanceof SecureConnectError && error.code === "WEAK_PASSWORD"
								? "password"
								: invalidField(error);
				const f = target ? fields[target as keyof typeof fields] : undefined;
				if (f) f.setError(message);
				alert.show(message);
			}
		});
	});
	const title = heading("Create your account");
	title.id = "signup-title";
	section.append(
		h("p", { class: "brand" }, "SecureConnect"),
		title,
		form,
		h("p", { class: "links" }, "Already have an account? ", h("a", { href: "/signin" }, "Sign in")),
	);
	return { title: "Create your account", element: section };
}

export function forgotPasswordScreen(): Screen {
	const email = input({ type: "email", name: "email", autocomplete: "email" });
	const alert = alertBox();
	const form = h(
		"form",
		{ class: "card stack", "aria-labelledby": "forgot-title" },
		alert.element,
		field("Email", email).wrapper,
		h("button", { type: "submit", class: "primary" }, "Send reset link"),
	);
	form.addEventListener("submit", (event) => {
		event.preventDefault();
		void busy(form, async () => {
			try {
				const client = await publicClient();
				await client.http.request("POST", "/v1/auth/password/forgot", { email: email.value.trim() }, false);
				alert.show("If an account uses this address, a reset link is on its way. It works for 30 minutes.", "ok");
			} catch (error) {
				alert.show(describeError(error));
			}
		});
	});
	const title = heading("Reset your password");
	title.id = "forgot-title";
	return {
		title: "Reset your password",
		element: h(
			"section",
			{ class: "auth" },
			h("p", { class: "brand" }, "SecureConnect"),
			title,
			form,
			h("p", { class: "links" }, h("a", { href: "/signin" }, "Back to sign in")),
		),
	};
}
