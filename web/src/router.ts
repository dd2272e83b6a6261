// Client-side routes on real paths (the Worker answers unknown non-api paths
// with index.html, so emailed links such as /verify-email?token= open the app).

export interface Route {
	path: string;
	params: Record<string, string>;
	query: URLSearchParams;
}

type Listener = (route: Route) => void;
let listener: Listener | undefined;

export function currentRoute(): Route {
	return { path: location.pathname, params: {}, query: new URLSearchParams(location.search) };
}

/** Matches "/chats/:id" style patterns; returns the params or undefined. */
export function match(pattern: string, path: string): Record<string, string> | undefined {
	const want = pattern.split("/");
	const have = path.replace(/\/$/, "").split("/");
	if (want.length !== have.length) return undefined;
	const params: Record<string, string> = {};
	for (let i = 0; i < want.length; i++) {
		const w = want[i] ?? "";
		const v = have[i] ?? "";
		if (w.startsWith(":")) params[w.slice(1)] = decodeURIComponent(v);
		else if (w !== v) return undefined;
	}
	return params;
}

export function navigate(to: string, { replace = false } = {}): void {
	if (to === location.pathname + location.search) {
		listener?.(currentRoute());
		return;
	}
	if (replace) history.replaceState(null, "", to);
	else history.pushState(null, "", to);
	listener?.(currentRoute());
}

export function startRouter(onRoute: Listener): void {
	listener = onRoute;
	addEventListener("popstate", () => onRoute(currentRoute()));
	// Same-origin links navigate in the app (a full load would drop this tab's keys).
	document.addEventListener("click", (event) => {
		const link = (event.target as Element | null)?.closest?.("a[href]");
		if (!(link instanceof HTMLAnchorElement) || event.defaultPrevented || event.button !== 0) return;
		if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
		if (link.origin !== location.origin || link.target || link.hasAttribute("download")) return;
		if (/^\/(v1|dev|docs|openapi\.json|health|ready)(\/|$)/.test(link.pathname)) return;
		event.preventDefault();
		navigate(link.pathname + link.search);
	});
	onRoute(currentRoute());
}
