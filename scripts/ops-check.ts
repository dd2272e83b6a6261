// `npm run test:ops`: checks the operations files in ops/.
//   promtool check config ops/prometheus/prometheus.yml   (and the rule files it names)
//   promtool check rules  ops/prometheus/alerts.yml
//   promtool test rules   ops/prometheus/alerts.test.yml  (each alert fires when it should)
//   the Grafana dashboard is valid JSON with unique panel ids and a templated datasource
//   the coturn template authenticates with a secret from the environment and denies private peers
//   every metric name the rules and dashboard use is declared by an exporter in this repository
//   (media-node/src/metrics.ts, scripts/ops/analytics-exporter.ts, blackbox) or is coturn's own
//   (turn_*): a misspelt name would make an alert that never fires.
//
// promtool comes from PATH, or from Debian's `prometheus` package, which this
// script downloads with apt-get and unpacks into ~/.cache/secureconnect/
// (only promtool is used: installing the package would also start a server).
// Ends with the line scripts/test.ts reads: "ops checks: N passed, N failed".
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const OPS = join(ROOT, "ops");
const CACHE = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "secureconnect", "prometheus");

/** `${name}` as written in a template or dashboard (not a JavaScript placeholder). */
const placeholder = (name: string) => `$${"{"}${name}}`;

let passed = 0;
let failed = 0;
function check(label: string, ok: boolean, detail = ""): void {
	ok ? passed++ : failed++;
	process.stdout.write(`${ok ? "ok  " : "FAIL"} ${label}${detail ? `\n${detail.replace(/^/gm, "     ")}` : ""}\n`);
}

function run(command: string, args: string[], cwd = ROOT) {
	const result = spawnSync(command, args, { cwd, encoding: "utf8" });
	return {
		ok: result.status === 0,
		output: `${result.stdout ?? ""}${result.stderr ?? ""}`.trim(),
		error: result.error,
	};
}

function findPromtool(): string | undefined {
	const onPath = run("sh", ["-c", "command -v promtool"]);
	if (onPath.ok && onPath.output) return onPath.output.split("\n")[0];
	const cached = join(CACHE, "usr/bin/promtool");
	if (existsSync(cached)) return cached;
	process.stdout.write("promtool not found: fetching Debian's prometheus package with apt-get\n");
	mkdirSync(CACHE, { recursive: true });
	let download = run("apt-get", ["download", "prometheus"], CACHE);
	if (!download.ok) {
		run("apt-get", ["update"]);
		download = run("apt-get", ["download", "prometheus"], CACHE);
	}
	const deb = readdirSync(CACHE).find((f) => /^prometheus_.*\.deb$/.test(f));
	if (!download.ok || !deb) {
		process.stdout.write(`apt-get download prometheus failed:\n${download.output}\n`);
		return undefined;
	}
	const unpack = run("dpkg-deb", ["-x", deb, "."], CACHE);
	if (!unpack.ok || !existsSync(cached)) {
		process.stdout.write(`unpacking ${deb} failed:\n${unpack.output}\n`);
		return undefined;
	}
	return cached;
}

/** Metric names used in PromQL expressions (ours, coturn's, the blackbox exporter's, `up`). */
function metricNames(expressions: string[]): Set<string> {
	const names = new Set<string>();
	for (const expr of expressions) {
		for (const m of expr.matchAll(/\b(secureconnect_[a-z0-9_]+|turn_[a-z0-9_]+|probe_[a-z0-9_]+|up)\b/g)) {
			if (m[1]) names.add(m[1]);
		}
	}
	return names;
}

/** `expr:` values of a rules file: one line, or an indented block after `expr: |`. */
function ruleExpressions(yaml: string): string[] {
	const out: string[] = [];
	const lines = yaml.split("\n");
	for (let i = 0; i < lines.length; i++) {
		const m = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(lines[i] ?? "");
		if (!m) continue;
		if (m[2] !== "|" && m[2] !== ">") {
			out.push(m[2] ?? "");
			continue;
		}
		const block: string[] = [];
		const indent = (m[1] ?? "").length;
		while (i + 1 < lines.length && /^\s*$|^\s+/.test(lines[i + 1] ?? "")) {
			const next = lines[i + 1] ?? "";
			if (next.trim() && next.length - next.trimStart().length <= indent) break;
			block.push(next);
			i++;
		}
		out.push(block.join("\n"));
	}
	return out;
}

function dashboardExpressions(json: string): string[] {
	const out: string[] = [];
	JSON.parse(json, (key, value) => {
		if (key === "expr" && typeof value === "string") out.push(value);
		return value;
	});
	return out;
}

function declaredMetrics(): Set<string> {
	const declared = new Set<string>(["up", "probe_success", "probe_duration_seconds", "probe_http_status_code"]);
	const media = readFileSync(join(ROOT, "media-node/src/metrics.ts"), "utf8");
	for (const m of media.matchAll(/`\$\{PREFIX\}([a-z0-9_]+)`/g)) declared.add(`secureconnect_media_${m[1]}`);
	// Names written out in full (the TURN probe's secureconnect_turn_*, client ICE failures).
	for (const m of media.matchAll(/"(secureconnect_[a-z0-9_]+)"/g)) if (m[1]) declared.add(m[1]);
	for (const m of media.matchAll(/"((?:process|nodejs)_[a-z0-9_]+)"/g)) if (m[1]) declared.add(m[1]);
	const bridge = readFileSync(join(ROOT, "scripts/ops/analytics-exporter.ts"), "utf8");
	for (const m of bridge.matchAll(/"(secureconnect_[a-z0-9_]+)"/g)) if (m[1]) declared.add(m[1]);
	return declared;
}

function checkDashboard(): void {
	const path = join(OPS, "grafana/secureconnect.json");
	try {
		const dashboard = JSON.parse(readFileSync(path, "utf8")) as {
			uid?: string;
			title?: string;
			panels?: Array<{ id?: number; type?: string; datasource?: unknown; targets?: Array<{ expr?: string }> }>;
		};
		const panels = dashboard.panels ?? [];
		const ids = panels.map((p) => p.id);
		const problems = [
			!dashboard.uid && "no uid",
			!dashboard.title && "no title",
			panels.length < 10 && `only ${panels.length} panels`,
			new Set(ids).size !== ids.length && "duplicate panel ids",
			panels.some(
				(p) => p.type !== "row" && JSON.stringify(p.datasource ?? {}).indexOf(placeholder("datasource")) < 0,
			) && `a panel without the ${placeholder("datasource")} variable`,
			panels.some((p) => p.type !== "row" && !(p.targets ?? []).some((t) => t.expr)) && "a panel without a query",
		].filter(Boolean);
		check(
			"grafana dashboard: valid JSON, unique ids, templated datasource",
			problems.length === 0,
			problems.join("; "),
		);
	} catch (error) {
		check("grafana dashboard: valid JSON", false, String(error));
	}
}

function checkCoturnTemplate(): void {
	const path = join(OPS, "coturn/turnserver.conf.template");
	if (!existsSync(path)) {
		check("coturn template exists", false, path);
		return;
	}
	const text = readFileSync(path, "utf8");
	const settings = text
		.split("\n")
		.map((l) => l.trim())
		.filter((l) => l && !l.startsWith("#"));
	const has = (line: string) => settings.includes(line);
	const denied = settings.filter((l) => l.startsWith("denied-peer-ip=")).map((l) => l.slice("denied-peer-ip=".length));
	const problems = [
		!has("use-auth-secret") && "use-auth-secret missing",
		!has(`static-auth-secret=${placeholder("TURN_SECRET")}`) &&
			`static-auth-secret must come from ${placeholder("TURN_SECRET")}`,
		settings.some((l) => /^static-auth-secret=(?!\$\{TURN_SECRET\}$)/.test(l)) && "a literal static-auth-secret",
		!settings.some((l) => l.startsWith("realm=")) && "no realm",
		!settings.some((l) => l.startsWith("tls-listening-port=")) && "no TLS listener",
		!settings.some((l) => l.startsWith("cert=")) && "no certificate",
		has("no-tls") && "TLS is disabled",
		has("allow-loopback-peers") && "loopback peers allowed",
		...[
			"0.0.0.0-0.255.255.255",
			"10.0.0.0-10.255.255.255",
			"100.64.0.0-100.127.255.255",
			"127.0.0.0-127.255.255.255",
			"169.254.0.0-169.254.255.255",
			"172.16.0.0-172.31.255.255",
			"192.168.0.0-192.168.255.255",
			"::1",
			"fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
			"fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		]
			.filter((range) => !denied.includes(range))
			.map((range) => `not denied: ${range}`),
	].filter(Boolean);
	check(
		"coturn template: secret from the environment, TLS, private and loopback peers denied",
		problems.length === 0,
		problems.join("; "),
	);
}

function main(): void {
	const promtool = findPromtool();
	check("promtool available", promtool !== undefined);
	if (promtool) {
		process.stdout.write(`using ${promtool} (${run(promtool, ["--version"]).output.split("\n")[0]})\n`);
		const config = run(promtool, ["check", "config", "prometheus.yml"], join(OPS, "prometheus"));
		check("promtool check config ops/prometheus/prometheus.yml", config.ok, config.ok ? "" : config.output);
		const rules = run(promtool, ["check", "rules", "alerts.yml"], join(OPS, "prometheus"));
		check("promtool check rules ops/prometheus/alerts.yml", rules.ok, rules.ok ? "" : rules.output);
		const tests = run(promtool, ["test", "rules", "alerts.test.yml"], join(OPS, "prometheus"));
		check("promtool test rules ops/prometheus/alerts.test.yml", tests.ok, tests.ok ? "" : tests.output);
	}
	checkDashboard();
	checkCoturnTemplate();

	const declared = declaredMetrics();
	const used = metricNames([
		...ruleExpressions(readFileSync(join(OPS, "prometheus/alerts.yml"), "utf8")),
		...dashboardExpressions(readFileSync(join(OPS, "grafana/secureconnect.json"), "utf8")),
	]);
	const coturnNative = [...used].filter((n) => n.startsWith("turn_"));
	const assumed = [...used].filter((n) => !declared.has(n) && !n.startsWith("turn_")).sort();
	if (coturnNative.length > 0) process.stdout.write(`coturn's own metrics used: ${coturnNative.sort().join(", ")}\n`);
	check(
		"rules and dashboard use only metrics an exporter here declares (or coturn's own turn_*)",
		assumed.length === 0,
		assumed.length > 0 ? `not declared by any exporter: ${assumed.join(", ")}` : "",
	);

	process.stdout.write(`ops checks: ${passed} passed, ${failed} failed\n`);
	process.exit(failed === 0 ? 0 : 1);
}

main();
