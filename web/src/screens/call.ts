// Calls: the incoming-call dialog and the call view (video tiles, mute,
// camera, screen share, hang up). Both are modal <dialog>s.
import type { CallSession, InboundVideoStats } from "../call/CallSession.ts";
import { h } from "../dom.ts";
import type { IncomingCall, Session } from "../session.ts";

declare global {
	interface Window {
		/** Inbound video counters of the current call (read by the end-to-end test and useful when debugging). */
		secureConnectCallStats?: () => Promise<InboundVideoStats | null>;
	}
}

export function incomingCallDialog(
	session: Session,
	incoming: IncomingCall,
	actions: { answer: () => void; decline: () => void },
): HTMLDialogElement {
	const caller = session.name(incoming.callerId);
	const chat = session.chats.get(incoming.conversationId);
	const answer = h("button", { type: "button", class: "primary", autofocus: true }, "Answer");
	const decline = h("button", { type: "button", class: "danger" }, "Decline");
	const dialog = h(
		"dialog",
		{
			class: "incoming-call",
			role: "alertdialog",
			"aria-labelledby": "incoming-title",
			"aria-describedby": "incoming-desc",
		},
		h("h2", { id: "incoming-title" }, `${caller} is calling`),
		h(
			"p",
			{ id: "incoming-desc" },
			`${incoming.media === "video" ? "Video" : "Audio"} call${
				chat && (chat.summary.title || chat.summary.members.length > 2) ? ` in “${session.chatTitle(chat)}”` : ""
			}.`,
		),
		h("div", { class: "actions" }, answer, decline),
	);
	answer.addEventListener("click", actions.answer);
	decline.addEventListener("click", actions.decline);
	dialog.addEventListener("cancel", (event) => {
		event.preventDefault();
		actions.decline();
	});
	return dialog;
}

interface TileView {
	figure: HTMLElement;
	video: HTMLVideoElement;
	caption: HTMLElement;
	avatar: HTMLElement;
}

function initials(name: string): string {
	return (
		name
			.split(/\s+/)
			.map((part) => part[0] ?? "")
			.join("")
			.slice(0, 2)
			.toUpperCase() || "?"
	);
}

export function callView(call: CallSession): { dialog: HTMLDialogElement; update: () => void; dispose: () => void } {
	const session = call.session;
	const chat = session.chats.get(call.conversationId);
	const title = chat ? session.chatTitle(chat) : "Call";
	const status = h("p", { class: "call-status", role: "status" });
	const tiles = h("div", { class: "tiles" });
	const mic = h("button", { type: "button", "aria-pressed": "false" }, "Mute");
	const camera = h("button", { type: "button", "aria-pressed": "false" }, "Camera off");
	const screen = h("button", { type: "button", "aria-pressed": "false" }, "Share screen");
	const hangUp = h("button", { type: "button", class: "danger" }, "Hang up");
	const error = h("p", { class: "call-error", role: "alert" });
	const run = (work: () => Promise<void>) =>
		work().catch((e: unknown) => {
			error.textContent = e instanceof Error ? e.message : String(e);
		});
	mic.addEventListener("click", () => void run(() => call.toggleMic()));
	camera.addEventListener("click", () => void run(() => call.toggleCamera()));
	screen.addEventListener("click", () => void run(() => call.toggleScreen()));
	hangUp.addEventListener("click", () => void call.hangUp());
	if (!("getDisplayMedia" in (navigator.mediaDevices ?? {}))) screen.hidden = true;

	const dialog = h(
		"dialog",
		{ class: "call", "aria-labelledby": "call-title" },
		h("header", { class: "call-header" }, h("h2", { id: "call-title" }, title), status),
		tiles,
		error,
		h("div", { class: "call-controls", role: "toolbar", "aria-label": "Call controls" }, mic, camera, screen, hangUp),
	);
	dialog.addEventListener("cancel", (event) => event.preventDefault());

	const views = new Map<string, TileView>();
	const tile = (key: string, name: string, stream: MediaStream, opts: { muted: boolean; screen?: boolean }) => {
		let view = views.get(key);
		if (!view) {
			const video = h("video", { autoplay: true, playsinline: true, class: opts.screen ? "screen" : "" });
			video.muted = opts.muted;
			const caption = h("figcaption", {});
			const avatar = h("span", { class: "avatar", "aria-hidden": "true" }, initials(name));
			const figure = h("figure", { class: "tile", "data-tile": key }, video, avatar, caption);
			view = { figure, video, caption, avatar };
			views.set(key, view);
		}
		if (view.video.srcObject !== stream) view.video.srcObject = stream;
		return view;
	};

	const update = () => {
		const peers = [...call.peers.values()];
		const names = peers.map((p) => p.name).join(", ");
		status.textContent =
			call.note ||
			(call.status === "ringing"
				? `Calling ${title}…`
				: call.status === "connecting"
					? "Connecting…"
					: call.status === "live"
						? peers.length
							? `In call with ${names}`
							: "Waiting for others to join…"
						: "Call ended");
		const keep = new Set<string>();
		const order: HTMLElement[] = [];
		for (const peer of peers) {
			const key = `peer:${peer.id}`;
			keep.add(key);
			const view = tile(key, peer.name, peer.stream, { muted: false });
			const showVideo = peer.hasVideo && !peer.cameraOff;
			view.video.hidden = !showVideo;
			view.avatar.hidden = showVideo;
			view.caption.textContent = `${peer.name}${peer.micOff ? " (muted)" : ""}${peer.cameraOff ? " (camera off)" : ""}`;
			view.figure.classList.toggle("speaking", call.activeSpeaker === peer.id && !peer.micOff);
			view.figure.setAttribute("aria-label", view.caption.textContent);
			order.push(view.figure);
			if (peer.screen) {
				const s = `screen:${peer.id}`;
				keep.add(s);
				const sv = tile(s, peer.name, peer.screen, { muted: true, screen: true });
				sv.avatar.hidden = true;
				sv.caption.textContent = `${peer.name}'s screen`;
				order.unshift(sv.figure);
			}
		}
		keep.add("local");
		const local = tile("local", session.me.displayName, call.local, { muted: true });
		const localVideo = call.local.getVideoTracks().length > 0 && call.cameraOn;
		local.video.hidden = !localVideo;
		local.avatar.hidden = localVideo;
		local.caption.textContent = `You${call.micOn ? "" : " (muted)"}${localVideo ? "" : " (camera off)"}`;
		local.figure.classList.add("local");
		order.push(local.figure);
		if (call.screen) {
			keep.add("local-screen");
			const sv = tile("local-screen", session.me.displayName, call.screen, { muted: true, screen: true });
			sv.avatar.hidden = true;
			sv.caption.textContent = "Your screen";
			order.push(sv.figure);
		}
		for (const [key, view] of views) {
			if (!keep.has(key)) {
				view.video.srcObject = null;
				views.delete(key);
			}
		}
		tiles.replaceChildren(...order);
		tiles.dataset.count = String(order.length);
		// Constant labels; the pressed state says whether each is on.
		mic.disabled = call.local.getAudioTracks().length === 0;
		camera.hidden = !call.hasCamera;
		mic.setAttribute("aria-pressed", String(!call.micOn));
		camera.setAttribute("aria-pressed", String(!call.cameraOn));
		screen.setAttribute("aria-pressed", String(Boolean(call.screen)));
	};

	window.secureConnectCallStats = () => (call.ended ? Promise.resolve(null) : call.stats());
	update();
	return {
		dialog,
		update,
		dispose: () => {
			for (const view of views.values()) view.video.srcObject = null;
			window.secureConnectCallStats = undefined;
		},
	};
}
