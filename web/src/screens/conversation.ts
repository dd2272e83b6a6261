// One conversation: history, typing, receipts, encrypted attachments, calls.
import { describeError } from "../api.ts";
import { announce, busy, formatBytes, formatTime, h, render } from "../dom.ts";
import { fetchFile, sendFile } from "../files.ts";
import { icon } from "../icons.ts";
import { navigate } from "../router.ts";
import type { Chat, ChatItem, FileRef, Session } from "../session.ts";
import { chatPresence } from "./chatList.ts";
import { alertBox, heading } from "./screen.ts";

const TYPING_REPEAT_MS = 3_000;
const TYPING_IDLE_MS = 4_000;

export interface ConversationOptions {
	startCall: (chatId: string, media: "audio" | "video") => void;
}

function fileCard(session: Session, ref: FileRef): HTMLElement {
	const status = h("span", { class: "file-status", role: "status" });
	const progress = h("progress", { max: 100, value: 0, hidden: true, "aria-label": `Downloading ${ref.name}` });
	const preview = h("div", { class: "file-preview" });
	const button = h("button", { type: "button", class: "small" }, "Download");
	button.setAttribute("aria-label", `Download ${ref.name}`);
	button.addEventListener("click", () => {
		void busy(button, async () => {
			progress.hidden = false;
			status.textContent = "Downloading and decrypting…";
			try {
				const blob = await fetchFile(session, ref, (done, total) => {
					progress.value = total ? Math.round((done / total) * 100) : 0;
				});
				const url = URL.createObjectURL(blob);
				const link = h("a", { href: url, download: ref.name }, `Save ${ref.name}`);
				link.click();
				status.replaceChildren("Decrypted. ", link);
				if (ref.contentType.startsWith("image/")) {
					preview.replaceChildren(h("img", { src: url, alt: `Image ${ref.name}`, class: "thumbnail" }));
				}
				announce(`${ref.name} downloaded and decrypted.`);
			} catch (error) {
				status.textContent = `Download failed: ${describeError(error)}`;
			} finally {
				progress.hidden = true;
			}
		});
	});
	return h(
		"div",
		{ class: "file-card" },
		h("span", { class: "file-icon" }, icon("paperclip")),
		h(
			"div",
			{ class: "file-info" },
			h("span", { class: "file-name" }, ref.name),
			h("span", { class: "file-meta" }, `${formatBytes(ref.size)} · end-to-end encrypted`),
			progress,
			status,
			preview,
		),
		button,
	);
}

function messageElement(session: Session, item: ChatItem): { li: HTMLLIElement; receipt: HTMLElement } {
	const receipt = h("span", { class: "receipt" });
	const body = item.undecryptable
		? h("p", { class: "body muted" }, "This message can't be decrypted on this device.")
		: item.file
			? fileCard(session, item.file)
			: h("p", { class: "body" }, item.text ?? "");
	const li = h(
		"li",
		{ class: `message ${item.mine ? "mine" : "theirs"}`, "data-seq": item.seq },
		h(
			"p",
			{ class: "meta" },
			h("span", { class: "sender" }, session.name(item.senderId)),
			" ",
			h("time", { datetime: item.sentAt }, formatTime(item.sentAt)),
		),
		body,
		item.mine ? receipt : null,
	);
	return { li, receipt };
}

export function conversationView(
	session: Session,
	chatId: string,
	options: ConversationOptions,
): { element: HTMLElement; title: string; dispose: () => void } {
	const chat = session.chats.get(chatId) as Chat;
	const title = heading(session.chatTitle(chat));
	const status = h("p", { class: "conversation-status" });
	const callButtons = h(
		"div",
		{ class: "call-buttons" },
		h("button", { type: "button", onclick: () => options.startCall(chatId, "video") }, "Video call"),
		h("button", { type: "button", onclick: () => options.startCall(chatId, "audio") }, "Audio call"),
	);
	const banner = h("p", { class: "e2ee-banner" });
	const log = h("ol", { class: "messages", role: "log", "aria-label": "Messages", tabindex: 0 });
	const typing = h("p", { class: "typing", "aria-live": "polite" });
	const alert = alertBox();
	const uploads = h("div", { class: "uploads" });

	const text = h("textarea", {
		id: "composer-text",
		name: "message",
		rows: 1,
		placeholder: "Write a message",
		autocomplete: "off",
	});
	const fileInput = h("input", { type: "file", id: "composer-file", class: "visually-hidden" });
	const composer = h(
		"form",
		{ class: "composer", "aria-label": "Send a message" },
		// The input comes first: it takes the focus, and its label (styled as a button) shows it.
		fileInput,
		h(
			"label",
			{ for: "composer-file", class: "button attach" },
			icon("paperclip"),
			h("span", { class: "attach-text" }, "Attach a file"),
		),
		h("label", { for: "composer-text", class: "visually-hidden" }, "Message"),
		text,
		h("button", { type: "submit", class: "primary" }, "Send"),
	);

	let lastTypingSent = 0;
	let idleTimer: ReturnType<typeof setTimeout> | undefined;
	text.addEventListener("input", () => {
		if (!text.value.trim()) return;
		const now = Date.now();
		if (now - lastTypingSent > TYPING_REPEAT_MS) {
			lastTypingSent = now;
			session.setTyping(chatId, true);
		}
		clearTimeout(idleTimer);
		idleTimer = setTimeout(() => {
			lastTypingSent = 0;
			session.setTyping(chatId, false);
		}, TYPING_IDLE_MS);
	});
	text.addEventListener("keydown", (event) => {
		if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
			event.preventDefault();
			composer.requestSubmit();
		}
	});
	composer.addEventListener("submit", (event) => {
		event.preventDefault();
		const value = text.value.trim();
		if (!value) return;
		alert.show(undefined);
		clearTimeout(idleTimer);
		lastTypingSent = 0;
		void busy(composer, async () => {
			try {
				await session.sendText(chatId, value);
				text.value = "";
			} catch (error) {
				alert.show(`Not sent: ${describeError(error)}`);
			}
		}).then(() => text.focus());
	});
	fileInput.addEventListener("change", () => {
		const file = fileInput.files?.[0];
		fileInput.value = "";
		if (!file) return;
		const bar = h("progress", { max: 100, value: 0 });
		const label = h("span", {}, `Encrypting ${file.name}…`);
		const row = h("div", { class: "upload", role: "status" }, label, bar);
		bar.setAttribute("aria-label", `Uploading ${file.name}`);
		uploads.append(row);
		void sendFile(session, chatId, file, (done, total) => {
			const percent = total ? Math.round((done / total) * 100) : 0;
			bar.value = percent;
			label.textContent = `Uploading ${file.name}: ${percent}%`;
		})
			.then(() => {
				row.remove();
				announce(`${file.name} sent.`);
			})
			.catch((error: unknown) => {
				label.textContent = `${file.name} was not sent: ${describeError(error)}`;
				bar.remove();
				row.append(h("button", { type: "button", class: "small", onclick: () => row.remove() }, "Dismiss"));
			});
	});

	const rows = new Map<number, { li: HTMLLIElement; receipt: HTMLElement }>();
	let readableBefore = session.joined(chatId);

	const draw = () => {
		const joined = session.joined(chatId);
		title.textContent = session.chatTitle(chat);
		const presence = chatPresence(session, chat);
		const typers = [...chat.typing.keys()].map((id) => session.name(id));
		typing.textContent = typers.length ? `${typers.join(", ")} ${typers.length > 1 ? "are" : "is"} typing…` : "";
		const members = chat.summary.members.length;
		status.textContent = presence
			? presence === "online"
				? "Online"
				: presence === "away"
					? "Away"
					: "Offline"
			: `${members} members`;
		callButtons.hidden = !joined;
		composer.hidden = !joined;
		if (joined) {
			banner.className = "e2ee-banner";
			banner.replaceChildren(
				icon("lock"),
				chat.earlierUndecryptable
					? "End-to-end encrypted. This device joined the conversation here: anything sent before can't be decrypted on it."
					: "End-to-end encrypted: only the members' devices can read these messages.",
			);
		} else {
			banner.className = "e2ee-banner warning";
			const others = chat.summary.members.map((m) => m.userId).filter((id) => id !== session.me.id);
			render(
				banner,
				"This device isn't in this conversation's encryption group (after a reload or on a new sign-in, this tab is a new device), so its messages can't be read or sent here. ",
				others.length
					? h(
							"button",
							{
								type: "button",
								class: "small",
								onclick: (event: Event) =>
									void busy(event.currentTarget as HTMLElement, async () => {
										try {
											navigate(`/chats/${await session.startChat(others)}`);
										} catch (error) {
											alert.show(describeError(error));
										}
									}),
							},
							"Start a new encrypted conversation",
						)
					: null,
			);
		}
		const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
		for (const item of chat.items) {
			if (rows.has(item.seq)) continue;
			const row = messageElement(session, item);
			rows.set(item.seq, row);
			const next = [...rows.keys()].filter((seq) => seq > item.seq).sort((a, b) => a - b)[0];
			const before = next === undefined ? null : (rows.get(next)?.li ?? null);
			log.insertBefore(row.li, before);
		}
		const lastMine = [...chat.items].reverse().find((i) => i.mine);
		for (const [seq, row] of rows) {
			if (seq !== lastMine?.seq) {
				row.receipt.textContent = "";
				continue;
			}
			const seenBy = [...chat.readBy].filter(([, read]) => read >= seq).map(([id]) => session.name(id));
			row.receipt.textContent = seenBy.length ? `Seen by ${seenBy.join(", ")}` : "Sent";
		}
		if (nearBottom) log.scrollTop = log.scrollHeight;
		if (!readableBefore && joined) {
			readableBefore = true;
			announce("This conversation can now be read on this device.");
		}
	};

	session.activeChatId = chatId;
	draw();
	session.markRead(chatId);
	const off = session.on((topic, id) => {
		if ((topic === "chat" && id === chatId) || topic === "users" || topic === "chats") draw();
	});
	const element = h(
		"section",
		{ class: "conversation", "aria-labelledby": "conversation-title" },
		h(
			"header",
			{ class: "conversation-header" },
			h("a", { href: "/chats", class: "back" }, "← Conversations"),
			h("div", { class: "conversation-heading" }, title, status),
			callButtons,
		),
		banner,
		log,
		typing,
		alert.element,
		uploads,
		composer,
	);
	title.id = "conversation-title";
	return {
		element,
		title: session.chatTitle(chat),
		dispose: () => {
			off();
			clearTimeout(idleTimer);
			if (session.activeChatId === chatId) session.activeChatId = undefined;
		},
	};
}
