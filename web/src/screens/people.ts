// /people: find someone by handle, friend requests both ways, friends, blocks.
import type { PublicUser } from "@secureconnect/protocol";
import { describeError } from "../api.ts";
import { announce, busy, field, h, render } from "../dom.ts";
import { navigate } from "../router.ts";
import type { Session } from "../session.ts";
import { alertBox, heading, type Screen } from "./screen.ts";

export function peopleScreen(session: Session): Screen {
	const alert = alertBox();
	const act = (button: HTMLElement, work: () => Promise<unknown>, done?: string) =>
		void busy(button, async () => {
			alert.show(undefined);
			try {
				await work();
				await session.refreshFriends();
				if (done) announce(done);
			} catch (error) {
				alert.show(describeError(error));
			}
		});
	const button = (label: string, onClick: (b: HTMLButtonElement) => void, extra: Record<string, string> = {}) => {
		const b = h("button", { type: "button", class: "small", ...extra }, label);
		b.addEventListener("click", () => onClick(b));
		return b;
	};
	const message = (user: PublicUser) =>
		button(
			"Message",
			(b) =>
				void busy(b, async () => {
					alert.show(undefined);
					try {
						navigate(`/chats/${await session.startChat([user.id])}`);
					} catch (error) {
						alert.show(describeError(error));
					}
				}),
			{ "aria-label": `Message ${user.displayName}`, class: "small primary" },
		);
	const block = (user: PublicUser) =>
		button(
			"Block",
			(b) => {
				if (!confirm(`Block ${user.displayName}? They won't be able to message, call or add you.`)) return;
				act(b, () => session.request("PUT", `/v1/blocks/${user.id}`), `${user.displayName} is blocked.`);
			},
			{ "aria-label": `Block ${user.displayName}`, class: "small danger" },
		);
	const person = (user: PublicUser, ...actions: HTMLElement[]) =>
		h(
			"li",
			{ class: "person" },
			h(
				"span",
				{ class: "person-name" },
				h("strong", {}, user.displayName),
				" ",
				h("span", { class: "handle" }, `@${user.handle}`),
			),
			h("span", { class: "actions" }, ...actions),
		);

	// ---- search
	const handle = h("input", {
		name: "handle",
		required: true,
		autocapitalize: "none",
		spellcheck: false,
		minlength: 3,
		maxlength: 32,
	});
	const results = h("div", { class: "search-results", role: "status" });
	const search = h(
		"form",
		{ class: "card stack", role: "search", "aria-label": "Find people" },
		field("Handle", handle, "Their exact handle, without the @.").wrapper,
		h("button", { type: "submit", class: "primary" }, "Find"),
		results,
	);
	search.addEventListener("submit", (event) => {
		event.preventDefault();
		const wanted = handle.value.trim().replace(/^@/, "");
		void busy(search, async () => {
			try {
				const { users } = await session.request<{ users: PublicUser[] }>(
					"GET",
					`/v1/users?handle=${encodeURIComponent(wanted)}`,
				);
				const user = users[0];
				if (!user) {
					results.replaceChildren(h("p", {}, `Nobody has the handle @${wanted}.`));
					return;
				}
				session.rememberUser(user);
				const isMe = user.id === session.me.id;
				const isFriend = session.friends?.friends.some((f) => f.id === user.id);
				const pending = session.friends?.outgoing.some((r) => r.user.id === user.id);
				results.replaceChildren(
					h(
						"ul",
						{ class: "people", "aria-label": "Search result" },
						person(
							user,
							...(isMe
								? [h("span", { class: "hint" }, "That's you.")]
								: [
										isFriend
											? h("span", { class: "hint" }, "Friend")
											: pending
												? h("span", { class: "hint" }, "Request sent")
												: button(
														"Add friend",
														(b) =>
															act(
																b,
																async () => {
																	await session.request("POST", "/v1/friends/requests", { userId: user.id });
																	b.replaceWith(h("span", { class: "hint" }, "Request sent"));
																},
																`Friend request sent to ${user.displayName}.`,
															),
														{ "aria-label": `Add ${user.displayName} as a friend` },
													),
										message(user),
										block(user),
									]),
						),
					),
				);
			} catch (error) {
				results.replaceChildren(h("p", { class: "field-error" }, describeError(error)));
			}
		});
	});

	// ---- lists
	const lists = h("div", { class: "stack" });
	const section = (title: string, items: HTMLElement[], empty: string) =>
		h(
			"section",
			{ class: "card", "aria-label": title },
			h("h2", {}, title),
			items.length ? h("ul", { class: "people" }, items) : h("p", { class: "hint" }, empty),
		);
	const draw = () => {
		const f = session.friends;
		if (!f) {
			render(lists, h("p", {}, "Loading…"));
			return;
		}
		render(
			lists,
			f.incoming.length
				? section(
						"Friend requests",
						f.incoming.map((r) =>
							person(
								r.user,
								button(
									"Accept",
									(b) =>
										act(
											b,
											() => session.request("POST", `/v1/friends/requests/${r.id}/accept`),
											`You and ${r.user.displayName} are friends.`,
										),
									{ "aria-label": `Accept ${r.user.displayName}'s friend request`, class: "small primary" },
								),
								button(
									"Decline",
									(b) => act(b, () => session.request("POST", `/v1/friends/requests/${r.id}/decline`)),
									{ "aria-label": `Decline ${r.user.displayName}'s friend request` },
								),
							),
						),
						"",
					)
				: null,
			section(
				"Friends",
				f.friends.map((user) =>
					person(
						user,
						h("span", {
							class: `presence presence-${session.presenceOf(user.id)}`,
							title: session.presenceOf(user.id),
						}),
						message(user),
						button(
							"Remove",
							(b) => {
								if (confirm(`Remove ${user.displayName} from your friends?`))
									act(b, () => session.request("DELETE", `/v1/friends/${user.id}`));
							},
							{ "aria-label": `Remove ${user.displayName} from friends` },
						),
						block(user),
					),
				),
				"No friends yet: find someone by their handle above.",
			),
			f.outgoing.length
				? section(
						"Sent requests",
						f.outgoing.map((r) =>
							person(
								r.user,
								button("Cancel", (b) => act(b, () => session.request("POST", `/v1/friends/requests/${r.id}/decline`)), {
									"aria-label": `Cancel the request to ${r.user.displayName}`,
								}),
							),
						),
						"",
					)
				: null,
			section(
				"Blocked",
				(session.blocks ?? []).map((b) =>
					person(
						b.user,
						button(
							"Unblock",
							(el) =>
								act(
									el,
									() => session.request("DELETE", `/v1/blocks/${b.user.id}`),
									`${b.user.displayName} is unblocked.`,
								),
							{ "aria-label": `Unblock ${b.user.displayName}` },
						),
					),
				),
				"Nobody is blocked.",
			),
		);
	};
	draw();
	void session.refreshFriends().catch((error: unknown) => alert.show(describeError(error)));
	const off = session.on((topic) => {
		if (topic === "friends" || topic === "users") draw();
	});
	return {
		title: "People",
		element: h("section", { class: "page" }, heading("People"), alert.element, search, lists),
		dispose: off,
	};
}
