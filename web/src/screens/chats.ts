// /chats and /chats/:id: the conversation list beside the open conversation
// (on a phone, one or the other).
import { h } from "../dom.ts";
import { navigate } from "../router.ts";
import type { Session } from "../session.ts";
import { chatList } from "./chatList.ts";
import { type ConversationOptions, conversationView } from "./conversation.ts";
import { heading, type Screen } from "./screen.ts";

export function chatsScreen(session: Session, chatId: string | undefined, options: ConversationOptions): Screen {
	const list = chatList(session, chatId);
	const chat = chatId ? session.chats.get(chatId) : undefined;
	if (chatId && chat) {
		const view = conversationView(session, chatId, options);
		return {
			title: view.title,
			element: h("div", { class: "chats has-conversation" }, list.element, view.element),
			dispose: () => {
				list.dispose();
				view.dispose();
			},
		};
	}
	// A conversation that is not listed yet (just created, or its invitation is on the way).
	const off = chatId
		? session.on((topic) => {
				if (topic === "chats" && session.chats.has(chatId)) navigate(`/chats/${chatId}`, { replace: true });
			})
		: undefined;
	const empty = h(
		"section",
		{ class: "conversation placeholder" },
		heading(chatId ? "Conversation not found" : "Conversations"),
		h(
			"p",
			{},
			chatId
				? "It may have been deleted, or you are no longer a member."
				: "Pick a conversation, or find people to start a new one.",
		),
	);
	return {
		title: "Conversations",
		element: h("div", { class: "chats" }, list.element, empty),
		dispose: () => {
			list.dispose();
			off?.();
		},
	};
}
