// What every screen module returns.
import { h } from "../dom.ts";

export interface Screen {
	/** The document title and the heading the focus moves to. */
	title: string;
	element: HTMLElement;
	dispose?: () => void;
}

/** The screen's heading: focusable by script, so navigation can move the focus to it. */
export function heading(text: string, level: "h1" | "h2" = "h1"): HTMLHeadingElement {
	return h(level, { tabindex: -1, class: "screen-heading" }, text);
}

/** A message area for a form: role=alert, so errors are read out when they appear. */
export function alertBox(): { element: HTMLElement; show: (text: string | undefined, kind?: "error" | "ok") => void } {
	const element = h("div", { role: "alert", class: "alert", hidden: true });
	return {
		element,
		show: (text, kind = "error") => {
			element.textContent = text ?? "";
			element.hidden = !text;
			element.className = `alert alert-${kind}`;
		},
	};
}
