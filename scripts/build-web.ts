// `npm run build:web`: bundles the web app (web/) into web/dist with esbuild.
// The Worker serves web/dist as static assets ([assets] in wrangler.toml), so
// it must exist before `wrangler dev`, the workerd tests and `wrangler deploy`.
// Output names carry a content hash; index.html is rewritten to point at them.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import * as esbuild from "esbuild";

const ROOT = join(import.meta.dirname, "..");
const WEB = join(ROOT, "web");
export const WEB_DIST = join(WEB, "dist");

const options = {
	entryPoints: { app: join(WEB, "src/main.ts"), styles: join(WEB, "src/styles.css") },
	outdir: WEB_DIST,
	entryNames: "[name]-[hash]",
	bundle: true,
	format: "esm",
	platform: "browser",
	target: ["es2022", "chrome110", "firefox110", "safari16"],
	minify: true,
	sourcemap: "linked",
	metafile: true,
	legalComments: "linked",
	define: { "process.env.NODE_ENV": '"production"' },
	logLevel: "warning",
} satisfies esbuild.BuildOptions;

/** Writes index.html with the hashed file names of this build. */
function writeIndex(metafile: esbuild.Metafile): void {
	const outputs = Object.entries(metafile.outputs);
	const find = (entry: string, ext: string) => {
		const match = outputs.find(([file, out]) => file.endsWith(ext) && out.entryPoint?.endsWith(entry));
		if (!match) throw new Error(`esbuild produced no ${ext} for ${entry}`);
		return `/${basename(match[0])}`;
	};
	const html = readFileSync(join(WEB, "index.html"), "utf8")
		.replace("/app.js", find("src/main.ts", ".js"))
		.replace("/app.css", find("src/styles.css", ".css"));
	writeFileSync(join(WEB_DIST, "index.html"), html);
	writeFileSync(join(WEB_DIST, "icon.svg"), readFileSync(join(WEB, "icon.svg")));
}

/** Builds once; with `watch`, keeps rebuilding on changes (for `npm run dev`). */
export async function buildWeb({ watch = false }: { watch?: boolean } = {}): Promise<void> {
	rmSync(WEB_DIST, { recursive: true, force: true });
	mkdirSync(WEB_DIST, { recursive: true });
	if (!watch) {
		writeIndex((await esbuild.build(options)).metafile);
		return;
	}
	const ctx = await esbuild.context({
		...options,
		plugins: [
			{
				name: "index-html",
				setup(build) {
					build.onEnd((result) => {
						if (result.metafile && result.errors.length === 0) writeIndex(result.metafile);
					});
				},
			},
		],
	});
	await ctx.rebuild();
	await ctx.watch();
}

if (import.meta.main) {
	const started = performance.now();
	await buildWeb({ watch: process.argv.includes("--watch") });
	process.stdout.write(`web app built into web/dist in ${Math.round(performance.now() - started)} ms\n`);
}
