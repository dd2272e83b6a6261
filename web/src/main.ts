// The app's entry point: routes to screens; signed-in routes need this tab's session.
import { h } from "./dom.ts";
import { match, navigate, type Route, startRouter } from "./router.ts";
import { forgotPasswordScreen, signInScreen, signUpScreen } from "./screens/auth.ts";
import { chatsScreen } from "./screens/chats.ts";
import { devicesScreen } from "./screens/devices.ts";
import { peopleScreen } from "./screens/people.ts";
import { profileScreen } from "./screens/profile.ts";
import type { Screen } from "./screens/screen.ts";
import { Shell } from "./screens/shell.ts";
import { resetPasswordScreen, verifyEmailScreen } from "./screens/tokens.ts";
import type { Session } from "./session.ts";

const root = document.getElementById("app") as HTMLElement;
let session: Session | undefined;
let shell: Shell | undefined;
let publicScreen: Screen | undefined;
let notice: string | undefined;

function showPublic(screen: Screen): void {
	shell?.dispose();
	shell = undefined;
	publicScreen?.dispose?.();
	publicScreen = screen;
	const main = h("main", { id: "main", tabindex: -1, class: "public" }, screen.element);
	root.replaceChildren(main);
	document.title = `${screen.title} · SecureConnect`;
	(screen.element.querySelector<HTMLElement>(".screen-heading") ?? main).focus();
}

function signedIn(next: Session): void {
	session = next;
	notice = undefined;
	next.onEnded = (reason) => {
		session = undefined;
		notice = reason;
		navigate("/signin", { replace: true });
	};
	const target = new URLSearchParams(location.search).get("next");
	navigate(target?.startsWith("/") && !target.startsWith("//") ? target : "/chats", { replace: true });
}

function privateScreen(s: Session, route: Route): Screen | undefined {
	const path = route.path.replace(/\/$/, "") || "/";
	const startCall = (chatId: string, media: "audio" | "video") => shell?.startCall(chatId, media);
	if (path === "/chats") return chatsScreen(s, undefined, { startCall });
	const chat = match("/chats/:id", path);
	if (chat) return chatsScreen(s, chat.id, { startCall });
	if (path === "/people") return peopleScreen(s);
	if (path === "/profile") return profileScreen(s);
	if (path === "/devices") return devicesScreen(s);
	return undefined;
}

/** The screen for a path, or a path to go to instead. */
function screenFor(route: Route): Screen | { redirect: string } | undefined {
	const path = route.path.replace(/\/$/, "") || "/";
	const token = route.query.get("token");
	if (path === "/verify-email") return verifyEmailScreen(token);
	if (path === "/reset-password") return resetPasswordScreen(token);
	if (!session) {
		if (path === "/signup") return signUpScreen();
		if (path === "/forgot-password") return forgotPasswordScreen();
		if (path === "/signin" || path === "/") return signInScreen(signedIn, notice);
		// A signed-in page without a session (e.g. after a reload): sign in, then come back.
		return { redirect: `/signin?next=${encodeURIComponent(path)}` };
	}
	if (path === "/" || path === "/signin" || path === "/signup") return { redirect: "/chats" };
	return privateScreen(session, route);
}

const notFound = (): Screen => ({
	title: "Page not found",
	element: h(
		"section",
		{ class: "auth" },
		h("h1", { tabindex: -1, class: "screen-heading" }, "Page not found"),
		h("p", {}, h("a", { href: "/chats" }, "Go to your conversations")),
	),
});

function onRoute(route: Route): void {
	const screen = screenFor(route);
	if (screen && "redirect" in screen) {
		navigate(screen.redirect, { replace: true });
		return;
	}
	if (!session || !screen || ["/verify-email", "/reset-password"].includes(route.path)) {
		showPublic(screen ?? notFound());
		return;
	}
	const path = route.path.replace(/\/$/, "");
	if (!shell) {
		publicScreen?.dispose?.();
		publicScreen = undefined;
		shell = new Shell(session);
		root.replaceChildren(shell.element);
	}
	shell.show(screen, path);
}

startRouter(onRoute);
