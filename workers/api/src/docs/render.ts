// A self-contained API reference rendered on the server from the OpenAPI
// document: no CDN script, so it works offline and under a strict CSP.

type Json = Record<string, unknown>;

const escapeHtml = (s: string) =>
	s.replace(
		/[&<>"']/g,
		(ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
	);

function schemaBlock(schema: unknown): string {
	if (!schema) return "";
	return `<pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre>`;
}

function operation(method: string, path: string, op: Json): string {
	const body = (op.requestBody as Json | undefined)?.content as Json | undefined;
	const bodySchema = (body?.["application/json"] as Json | undefined)?.schema;
	const params = (op.parameters as Json[] | undefined) ?? [];
	const responses = Object.entries((op.responses as Json | undefined) ?? {});
	const id = `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-");
	return `<section class="op" id="${escapeHtml(id)}">
<h3><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></h3>
${op.summary ? `<p>${escapeHtml(String(op.summary))}</p>` : ""}
${op.security ? `<p class="auth">Requires <code>Authorization: Bearer &lt;accessToken&gt;</code></p>` : ""}
${params.length ? `<h4>Parameters</h4><ul>${params.map((p) => `<li><code>${escapeHtml(String(p.name))}</code> (${escapeHtml(String(p.in))}${p.required ? ", required" : ""})</li>`).join("")}</ul>` : ""}
${bodySchema ? `<details><summary>Request body</summary>${schemaBlock(bodySchema)}</details>` : ""}
<h4>Responses</h4><ul>${responses.map(([status, r]) => `<li><code>${escapeHtml(status)}</code> ${escapeHtml(String((r as Json).description ?? ""))}</li>`).join("")}</ul>
</section>`;
}

export function renderDocs(doc: Json, nonce: string): string {
	const info = (doc.info as Json | undefined) ?? {};
	const paths = Object.entries((doc.paths as Json | undefined) ?? {});
	const byTag = new Map<string, string[]>();
	for (const [path, item] of paths) {
		for (const [method, op] of Object.entries(item as Json)) {
			const tag = ((op as Json).tags as string[] | undefined)?.[0] ?? "Other";
			byTag.set(tag, [...(byTag.get(tag) ?? []), operation(method, path, op as Json)]);
		}
	}
	const schemas = Object.entries(((doc.components as Json | undefined)?.schemas as Json | undefined) ?? {});
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(String(info.title ?? "API"))} reference</title>
<style nonce="${nonce}">
body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#111;background:#fff}
nav a{margin-right:1rem}h2{border-bottom:2px solid #ddd;margin-top:2.5rem}
.op{border:1px solid #ccc;border-radius:6px;padding:.25rem 1rem;margin:1rem 0}
.method{display:inline-block;min-width:4.5rem;font-weight:700}.get{color:#05632f}.post{color:#0b4f9c}
.put,.patch{color:#7a4b00}.delete{color:#a10000}pre{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:14px}
.auth{color:#444;font-style:italic}
</style></head><body>
<header><h1>${escapeHtml(String(info.title ?? "API"))} <small>v${escapeHtml(String(info.version ?? ""))}</small></h1>
<p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a> (OpenAPI ${escapeHtml(String(doc.openapi ?? ""))}).
Every error has the shape <code>{"error":{"code","message","requestId"}}</code>.</p>
<nav aria-label="Sections">${[...byTag.keys()].map((t) => `<a href="#tag-${escapeHtml(t)}">${escapeHtml(t)}</a>`).join("")}<a href="#schemas">Schemas</a></nav></header>
<main>${[...byTag.entries()].map(([tag, ops]) => `<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>${ops.join("")}`).join("")}
<h2 id="schemas">Schemas</h2>${schemas.map(([name, s]) => `<details><summary><code>${escapeHtml(name)}</code></summary>${schemaBlock(s)}</details>`).join("")}
</main></body></html>`;
}
