// /profile: name and handle, email confirmation, password, account deletion.
import { PASSWORD_MIN_LENGTH, type User } from "@secureconnect/protocol";
import { describeError, invalidField, SecureConnectError } from "../api.ts";
import { announce, busy, field, h } from "../dom.ts";
import type { Session } from "../session.ts";
import { alertBox, heading, type Screen } from "./screen.ts";

export function profileScreen(session: Session): Screen {
	const me = session.me;
	const displayName = h("input", { name: "displayName", required: true, maxlength: 64, value: me.displayName });
	const handle = h("input", {
		name: "handle",
		required: true,
		minlength: 3,
		maxlength: 32,
		pattern: "[A-Za-z0-9_.]+",
		value: me.handle,
		autocapitalize: "none",
		spellcheck: false,
	});
	const nameField = field("Your name", displayName);
	const handleField = field("Handle", handle, "People find you by it.");
	const profileAlert = alertBox();
	const profile = h(
		"form",
		{ class: "card stack", "aria-labelledby": "profile-title" },
		h("h2", { id: "profile-title" }, "Profile"),
		profileAlert.element,
		nameField.wrapper,
		handleField.wrapper,
		h("button", { type: "submit", class: "primary" }, "Save profile"),
	);
	profile.addEventListener("submit", (event) => {
		event.preventDefault();
		nameField.setError(undefined);
		handleField.setError(undefined);
		void busy(profile, async () => {
			try {
				const { user } = await session.request<{ user: User }>("PATCH", "/v1/users/me", {
					displayName: displayName.value.trim(),
					handle: handle.value.trim(),
				});
				session.me = user;
				session.rememberUser(user);
				session.emit("me");
				profileAlert.show("Saved.", "ok");
			} catch (error) {
				const message = describeError(error);
				const target =
					(error instanceof SecureConnectError && error.code === "HANDLE_TAKEN") || invalidField(error) === "handle"
						? handleField
						: invalidField(error) === "displayName"
							? nameField
							: undefined;
				target?.setError(message);
				profileAlert.show(message);
			}
		});
	});

	const emailAlert = alertBox();
	const email = h(
		"section",
		{ class: "card stack", "aria-labelledby": "email-title" },
		h("h2", { id: "email-title" }, "Email"),
		h("p", {}, me.email, " — ", me.emailVerified ? "confirmed" : h("strong", {}, "not confirmed yet")),
		emailAlert.element,
		me.emailVerified
			? null
			: h(
					"button",
					{
						type: "button",
						onclick: (event: Event) =>
							void busy(event.currentTarget as HTMLElement, async () => {
								try {
									await session.request("POST", "/v1/auth/verify-email/resend");
									emailAlert.show("A new confirmation link is on its way.", "ok");
								} catch (error) {
									emailAlert.show(describeError(error));
								}
							}),
					},
					"Send the confirmation link again",
				),
	);

	const current = h("input", { type: "password", name: "current", required: true, autocomplete: "current-password" });
	const next = h("input", {
		type: "password",
		name: "new",
		required: true,
		autocomplete: "new-password",
		minlength: PASSWORD_MIN_LENGTH,
	});
	const passwordAlert = alertBox();
	const password = h(
		"form",
		{ class: "card stack", "aria-labelledby": "password-title" },
		h("h2", { id: "password-title" }, "Password"),
		passwordAlert.element,
		field("Current password", current).wrapper,
		field("New password", next, `At least ${PASSWORD_MIN_LENGTH} characters. Your other sessions are signed out.`)
			.wrapper,
		h("button", { type: "submit" }, "Change password"),
	);
	password.addEventListener("submit", (event) => {
		event.preventDefault();
		void busy(password, async () => {
			try {
				await session.request("POST", "/v1/auth/password/change", {
					currentPassword: current.value,
					password: next.value,
				});
				current.value = "";
				next.value = "";
				passwordAlert.show("Password changed. Your other sessions were signed out.", "ok");
			} catch (error) {
				passwordAlert.show(describeError(error));
			}
		});
	});

	const dangerAlert = alertBox();
	const danger = h(
		"section",
		{ class: "card stack", "aria-labelledby": "delete-title" },
		h("h2", { id: "delete-title" }, "Delete account"),
		h("p", {}, "Deletes your account, your files and your devices. This can't be undone."),
		dangerAlert.element,
		h(
			"button",
			{
				type: "button",
				class: "danger",
				onclick: (event: Event) => {
					if (!confirm("Delete your account and everything in it? This can't be undone.")) return;
					void busy(event.currentTarget as HTMLElement, async () => {
						try {
							await session.request("DELETE", "/v1/users/me");
							announce("Your account was deleted.");
							session.end("Your account was deleted.");
						} catch (error) {
							dangerAlert.show(describeError(error));
						}
					});
				},
			},
			"Delete my account",
		),
	);

	return {
		title: "Profile",
		element: h("section", { class: "page" }, heading("Profile"), profile, email, password, danger),
	};
}
