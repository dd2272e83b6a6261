// A few DOM helpers: elements from a tag, attributes and children (text is
// always set as text, never parsed as HTML), live announcements, and
// re-rendering a region without losing the keyboard focus.

export type Child = Node | string | number | false | null | undefined | Child[];
type Handler = (event: never) => void;
export type Attrs = Record<string, string | number | boolean | Handler | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
	tag: K,
	attrs: Attrs = {},
	...children: Child[]
): HTMLElementTagNameMap[K] {
	const el = document.createElement(tag);
	for (const [name, value] of Object.entries(attrs)) {
		if (value === undefined || value === null || value === false) continue;
		if (typeof value === "function") el.addEventListener(name.slice(2), value as unknown as EventListener);
		else el.setAttribute(name, value === true ? "" : String(value));
	}
	append(el, children);
	return el;
}

export function append(parent: Node, children: Child[]): void {
	for (const child of children) {
		if (child === null || child === undefined || child === false) continue;
		if (Array.isArray(child)) append(parent, child);
		else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
	}
}

/** Replaces a region's content, then puts the focus back on the element with the same data-focus key. */
export function render(region: Element, ...children: Child[]): void {
	const active = document.activeElement;
	const key = active && region.contains(active) ? active.getAttribute("data-focus") : null;
	region.replaceChildren();
	append(region, children);
	if (key) region.querySelector<HTMLElement>(`[data-focus="${CSS.escape(key)}"]`)?.focus();
}

/** Says something to screen reader users (the page's polite live region). */
export function announce(message: string): void {
	const region = document.getElementById("announcer");
	if (!region) return;
	region.textContent = "";
	// A separate task, so the same message twice is announced twice.
	setTimeout(() => {
		region.textContent = message;
	}, 50);
}

/** A labelled form field with an optional hint and an error slot wired by aria-describedby. */
export function field(
	label: string,
	input: HTMLInputElement | HTMLTextAreaElement,
	hint?: string,
): { wrapper: HTMLElement; setError: (message: string | undefined) => void } {
	const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
	input.id = id;
	const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : undefined;
	const errorEl = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
	input.setAttribute("aria-describedby", [hintEl ? `${id}-hint` : "", `${id}-error`].filter(Boolean).join(" "));
	const wrapper = h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, errorEl);
	return {
		wrapper,
		setError: (message) => {
			errorEl.textContent = message ?? "";
			errorEl.hidden = !message;
			if (message) input.setAttribute("aria-invalid", "true");
			else input.removeAttribute("aria-invalid");
		},
	};
}

export function formatBytes(bytes: number): string {
	if (bytes < 1024) return `${bytes} B`;
	const units = ["KB", "MB", "GB"];
	let value = bytes / 1024;
	let unit = 0;
	while (value >= 1024 && unit < units.length - 1) {
		value /= 1024;
		unit++;
	}
	return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(iso: string): string {
	const date = new Date(iso);
	const sameDay = date.toDateString() === new Date().toDateString();
	return sameDay
		? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
		: date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Disables a form's controls while `work` runs. */
export async function busy<T>(form: HTMLFormElement | HTMLElement, work: () => Promise<T>): Promise<T> {
	const controls = [...form.querySelectorAll<HTMLButtonElement | HTMLInputElement>("button, input, textarea")];
	const previously = controls.map((c) => c.disabled);
	for (const c of controls) c.disabled = true;
	form.setAttribute("aria-busy", "true");
	try {
		return await work();
	} finally {
		controls.forEach((c, i) => {
			c.disabled = previously[i] ?? false;
		});
		form.removeAttribute("aria-busy");
	}
}
