// The conversation list: names, presence, unread counts, typing, last message.
import { h, render } from "../dom.ts";
import type { Chat, Session } from "../session.ts";

function preview(session: Session, chat: Chat): string {
	if (chat.typing.size > 0) return `${[...chat.typing.keys()].map((id) => session.name(id)).join(", ")} typing…`;
	if (!session.joined(chat.id)) return "Can't be read on this device";
	const last = chat.items.at(-1);
	if (!last) return "No messages yet";
	const who = last.mine ? "You: " : "";
	if (last.file) return `${who}File: ${last.file.name}`;
	if (last.undecryptable) return "Message can't be decrypted";
	return `${who}${last.text ?? ""}`;
}

/** The other member's presence in a two-person conversation (undefined for groups). */
export function chatPresence(session: Session, chat: Chat): "online" | "away" | "offline" | undefined {
	const others = chat.summary.members.filter((m) => m.userId !== session.me.id);
	const other = others[0];
	return others.length === 1 && other ? (chat.presence.get(other.userId) ?? "offline") : undefined;
}

export function chatList(
	session: Session,
	activeId: string | undefined,
): { element: HTMLElement; dispose: () => void } {
	const list = h("ul", { class: "chat-list", role: "list" });
	const element = h(
		"nav",
		{ class: "chat-list-pane", "aria-label": "Conversations" },
		h(
			"div",
			{ class: "pane-header" },
			h("h2", {}, "Conversations"),
			h("a", { href: "/people", class: "button small" }, "New conversation"),
		),
		list,
	);
	const draw = () => {
		const chats = session.sortedChats();
		render(
			list,
			chats.length === 0
				? h(
						"li",
						{ class: "empty" },
						"No conversations yet. ",
						h("a", { href: "/people" }, "Find people"),
						" to start one.",
					)
				: chats.map((chat) => {
						const unread = chat.unread(session.joined(chat.id));
						const presence = chatPresence(session, chat);
						const title = session.chatTitle(chat);
						return h(
							"li",
							{},
							h(
								"a",
								{
									href: `/chats/${chat.id}`,
									class: `chat-link${chat.id === activeId ? " active" : ""}`,
									"aria-current": chat.id === activeId ? "page" : null,
									"data-focus": chat.id,
								},
								presence
									? h(
											"span",
											{ class: `presence presence-${presence}`, title: presence },
											h("span", { class: "visually-hidden" }, `${presence}, `),
										)
									: h("span", { class: "presence presence-group", "aria-hidden": "true" }),
								h(
									"span",
									{ class: "chat-text" },
									h("span", { class: "chat-title" }, title),
									h("span", { class: "chat-preview" }, preview(session, chat)),
								),
								unread > 0
									? h("span", { class: "badge" }, String(unread), h("span", { class: "visually-hidden" }, " unread"))
									: null,
							),
						);
					}),
		);
	};
	draw();
	const off = session.on((topic) => {
		if (topic === "chats" || topic === "users" || topic === "chat") draw();
	});
	return { element, dispose: off };
}
