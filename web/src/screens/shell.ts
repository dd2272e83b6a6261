// The signed-in frame: header and navigation, the main region the screens
// render into, and the call layer (incoming call dialog, call view).
import { describeError } from "../api.ts";
import { CallSession } from "../call/CallSession.ts";
import { announce, h, render } from "../dom.ts";
import { icon } from "../icons.ts";
import type { Session } from "../session.ts";
import { callView, incomingCallDialog } from "./call.ts";
import type { Screen } from "./screen.ts";

const NAV = [
	{ href: "/chats", label: "Conversations" },
	{ href: "/people", label: "People" },
	{ href: "/profile", label: "Profile" },
	{ href: "/devices", label: "Devices" },
];

export class Shell {
	readonly element: HTMLElement;
	readonly #session: Session;
	readonly #main = h("main", { id: "main", tabindex: -1 });
	readonly #nav = h("ul", { class: "nav-links" });
	readonly #who = h("span", { class: "who" });
	readonly #toast = h("div", { class: "toast", role: "status", hidden: true });
	readonly #offline = h("p", { class: "offline", role: "status", hidden: true }, "Reconnecting…");
	#screen: Screen | undefined;
	#path = "";
	#call: { call: CallSession; view: ReturnType<typeof callView> } | undefined;
	#incoming: { callId: string; dialog: HTMLDialogElement } | undefined;
	#off: () => void;

	constructor(session: Session) {
		this.#session = session;
		const signOut = h("button", { type: "button", class: "small" }, "Sign out");
		signOut.addEventListener("click", () => {
			signOut.disabled = true;
			void this.#call?.call.hangUp();
			void session.signOut();
		});
		this.element = h(
			"div",
			{ class: "shell" },
			h(
				"header",
				{ class: "top" },
				h("a", { href: "/chats", class: "brand" }, icon("lock"), h("span", { class: "brand-name" }, "SecureConnect")),
				h("nav", { "aria-label": "Main" }, this.#nav),
				h("div", { class: "account" }, this.#who, signOut),
			),
			this.#offline,
			this.#toast,
			this.#main,
		);
		this.#drawNav();
		this.#off = session.on((topic) => {
			if (topic === "chats" || topic === "me") this.#drawNav();
			if (topic === "connection") this.#offline.hidden = session.online;
			if (topic === "call") this.#drawIncoming();
		});
	}

	show(screen: Screen, path: string): void {
		this.#screen?.dispose?.();
		this.#screen = screen;
		this.#path = path;
		this.#main.replaceChildren(screen.element);
		document.title = `${screen.title} · SecureConnect`;
		this.#drawNav();
		(screen.element.querySelector<HTMLElement>(".screen-heading") ?? this.#main).focus();
	}

	#drawNav(): void {
		const session = this.#session;
		const unread = session.sortedChats().reduce((n, c) => n + c.unread(session.joined(c.id)), 0);
		this.#who.textContent = `${session.me.displayName} (@${session.me.handle})`;
		render(
			this.#nav,
			NAV.map(({ href, label }) => {
				const current = this.#path === href || (href === "/chats" && this.#path.startsWith("/chats/"));
				return h(
					"li",
					{},
					h(
						"a",
						{ href, "aria-current": current ? "page" : null, "data-focus": href },
						label,
						href === "/chats" && unread > 0
							? h("span", { class: "badge" }, String(unread), h("span", { class: "visually-hidden" }, " unread"))
							: null,
					),
				);
			}),
		);
	}

	toast(message: string): void {
		this.#toast.textContent = message;
		this.#toast.hidden = false;
		setTimeout(() => {
			if (this.#toast.textContent === message) this.#toast.hidden = true;
		}, 6_000);
	}

	// ------------------------------------------------------------ calls

	startCall(chatId: string, media: "audio" | "video"): void {
		if (this.#call) {
			this.toast("You are already in a call.");
			return;
		}
		CallSession.start(this.#session, chatId, media).then(
			(call) => this.#openCall(call),
			(error: unknown) => this.toast(`Couldn't start the call: ${describeError(error)}`),
		);
	}

	#openCall(call: CallSession): void {
		const view = callView(call);
		this.#call = { call, view };
		call.onChange = () => {
			view.update();
			if (call.ended) this.#closeCall(call);
		};
		document.body.append(view.dialog);
		view.dialog.showModal();
		view.dialog.querySelector<HTMLButtonElement>(".call-controls button")?.focus();
	}

	#closeCall(call: CallSession): void {
		if (this.#call?.call !== call) return;
		const { view } = this.#call;
		this.#call = undefined;
		view.dispose();
		view.dialog.close();
		view.dialog.remove();
		this.toast(call.note || "Call ended.");
		announce(call.note || "Call ended.");
		this.#drawIncoming();
	}

	#drawIncoming(): void {
		const session = this.#session;
		const incoming = session.incomingCall;
		if (this.#incoming && this.#incoming.callId !== incoming?.callId) {
			this.#incoming.dialog.close();
			this.#incoming.dialog.remove();
			this.#incoming = undefined;
		}
		if (!incoming || this.#incoming || this.#call) return;
		const dismiss = () => {
			session.incomingCall = undefined;
			this.#drawIncoming();
		};
		const dialog = incomingCallDialog(session, incoming, {
			answer: () => {
				dismiss();
				CallSession.answer(session, incoming).then(
					(call) => this.#openCall(call),
					(error: unknown) => this.toast(`Couldn't join the call: ${describeError(error)}`),
				);
			},
			decline: () => {
				dismiss();
				void CallSession.decline(session, incoming.callId).catch(() => {});
			},
		});
		this.#incoming = { callId: incoming.callId, dialog };
		document.body.append(dialog);
		dialog.showModal();
		announce(`${session.name(incoming.callerId)} is calling.`);
	}

	dispose(): void {
		this.#off();
		this.#screen?.dispose?.();
		if (this.#call) void this.#call.call.end("Signed out.");
		this.#incoming?.dialog.remove();
	}
}
