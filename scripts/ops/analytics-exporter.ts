// Bridges the Worker's Analytics Engine events (workers/api/src/lib/metrics.ts)
// to Prometheus: every POLL_SECONDS it asks the Analytics Engine SQL API for
// the events of the window that has just become complete (older than
// LAG_SECONDS, since ingestion takes a little while), adds them to counters,
// and serves the counters on /metrics. Counters start at zero when the
// exporter starts, which Prometheus' rate()/increase() treat as a reset.
//
//   node scripts/ops/analytics-exporter.ts     (Node >= 22.18, no dependencies)
//
//   CF_ACCOUNT_ID     Cloudflare account id
//   CF_API_TOKEN      API token with "Account Analytics: Read"
//   AE_DATASET        default secureconnect_metrics
//   AE_ENVIRONMENT    which ENVIRONMENT's events (blob5), default production
//   EXPORTER_HOST     default 127.0.0.1     EXPORTER_PORT  default 9465
//   POLL_SECONDS      default 60            LAG_SECONDS    default 120
//
// Series (labels are route patterns and fixed names, never ids):
//   secureconnect_api_requests_total{route,method,status_class}
//   secureconnect_api_request_duration_ms_sum{route,method}
//   secureconnect_realtime_socket_events_total{object,change}
//   secureconnect_messages_total{kind}, secureconnect_message_bytes_total{kind}
//   secureconnect_queue_jobs_total{job,outcome}
//   secureconnect_queue_dead_letters_total{job}
//   secureconnect_exporter_polls_total, secureconnect_exporter_errors_total,
//   secureconnect_exporter_last_success_timestamp_seconds
import http from "node:http";

export interface ExporterConfig {
	accountId: string;
	apiToken: string;
	dataset: string;
	environment: string;
	pollSeconds: number;
	lagSeconds: number;
}

interface Row {
	event: string;
	name: string;
	detail: string;
	outcome: string;
	count: number;
	value_sum: number;
}

type Labels = Record<string, string>;

const SAFE = /^[A-Za-z0-9_]+$/;

function dateTime(ms: number): string {
	return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

/** The one query per poll: weighted counts and value sums of every event kind in (from, to]. */
export function windowQuery(config: Pick<ExporterConfig, "dataset" | "environment">, from: number, to: number): string {
	if (!SAFE.test(config.dataset)) throw new Error("AE_DATASET must be a plain identifier");
	if (!SAFE.test(config.environment)) throw new Error("AE_ENVIRONMENT must be a plain word");
	return [
		"SELECT blob1 AS event, blob2 AS name, blob3 AS detail, blob4 AS outcome,",
		"SUM(_sample_interval * double2) AS count, SUM(_sample_interval * double1 * double2) AS value_sum",
		`FROM ${config.dataset}`,
		`WHERE blob5 = '${config.environment}'`,
		`AND timestamp > toDateTime('${dateTime(from)}') AND timestamp <= toDateTime('${dateTime(to)}')`,
		"GROUP BY event, name, detail, outcome",
		"FORMAT JSON",
	].join(" ");
}

class Counter {
	readonly values = new Map<string, { labels: Labels; value: number }>();
	constructor(
		readonly name: string,
		readonly help: string,
		readonly type: "counter" | "gauge" = "counter",
	) {}

	add(labels: Labels, value: number): void {
		if (!Number.isFinite(value) || value <= 0) return;
		const key = JSON.stringify(labels);
		const entry = this.values.get(key) ?? { labels, value: 0 };
		entry.value += value;
		this.values.set(key, entry);
	}

	set(value: number, labels: Labels = {}): void {
		this.values.set(JSON.stringify(labels), { labels, value });
	}
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export class AnalyticsExporter {
	readonly #config: ExporterConfig;
	readonly #fetch: typeof fetch;
	#cursor: number | undefined;
	readonly requests = new Counter(
		"secureconnect_api_requests_total",
		"Api requests by route pattern, method and status class.",
	);
	readonly duration = new Counter("secureconnect_api_request_duration_ms_sum", "Sum of api request latencies (ms).");
	readonly sockets = new Counter(
		"secureconnect_realtime_socket_events_total",
		"Sockets opened and closed on Durable Objects.",
	);
	readonly messages = new Counter("secureconnect_messages_total", "Messages stored in conversation logs.");
	readonly messageBytes = new Counter("secureconnect_message_bytes_total", "Ciphertext bytes of stored messages.");
	readonly jobs = new Counter("secureconnect_queue_jobs_total", "Notification jobs by outcome.");
	readonly deadLetters = new Counter("secureconnect_queue_dead_letters_total", "Notification jobs dead-lettered.");
	readonly polls = new Counter("secureconnect_exporter_polls_total", "Analytics Engine queries made.");
	readonly errors = new Counter("secureconnect_exporter_errors_total", "Analytics Engine queries that failed.");
	readonly lastSuccess = new Counter(
		"secureconnect_exporter_last_success_timestamp_seconds",
		"When the last query succeeded (unix seconds).",
		"gauge",
	);

	constructor(config: ExporterConfig, fetchImpl: typeof fetch = fetch) {
		this.#config = config;
		this.#fetch = fetchImpl;
		// Series that exist from the start, so increase() sees the first dead letter and alerts see 0, not nothing.
		this.polls.set(0);
		this.errors.set(0);
		for (const job of ["email", "push"]) this.deadLetters.set(0, { job });
	}

	/** Queries the next complete window and adds it to the counters. Never throws. */
	async poll(now = Date.now()): Promise<void> {
		const to = now - this.#config.lagSeconds * 1000;
		this.#cursor ??= to - this.#config.pollSeconds * 1000;
		const from = this.#cursor;
		if (to <= from) return;
		this.polls.add({}, 1);
		try {
			const res = await this.#fetch(
				`https://api.cloudflare.com/client/v4/accounts/${encodeURIComponent(this.#config.accountId)}/analytics_engine/sql`,
				{
					method: "POST",
					headers: { authorization: `Bearer ${this.#config.apiToken}` },
					body: windowQuery(this.#config, from, to),
					signal: AbortSignal.timeout(30_000),
				},
			);
			if (!res.ok) throw new Error(`Analytics Engine answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
			const body = (await res.json()) as { data?: Row[] };
			for (const row of body.data ?? []) this.#add(row);
			this.#cursor = to;
			this.lastSuccess.set(Math.floor(now / 1000));
		} catch (error) {
			// The window stays open: the next poll asks for it again, together with the next one.
			this.errors.add({}, 1);
			process.stderr.write(
				`${JSON.stringify({ level: "warn", msg: "analytics query failed", error: String(error), time: new Date().toISOString() })}\n`,
			);
		}
	}

	#add(row: Row): void {
		const count = Number(row.count);
		const sum = Number(row.value_sum);
		switch (row.event) {
			case "request":
				this.requests.add({ route: row.name, method: row.detail, status_class: row.outcome }, count);
				this.duration.add({ route: row.name, method: row.detail }, sum);
				break;
			case "socket":
				this.sockets.add({ object: row.name, change: row.detail }, count);
				break;
			case "message":
				this.messages.add({ kind: row.name }, count);
				this.messageBytes.add({ kind: row.name }, sum);
				break;
			case "queue":
				this.jobs.add({ job: row.name, outcome: row.outcome }, count);
				if (row.outcome === "dead_letter") this.deadLetters.add({ job: row.name }, count);
				break;
		}
	}

	render(): string {
		const lines: string[] = [];
		for (const metric of [
			this.requests,
			this.duration,
			this.sockets,
			this.messages,
			this.messageBytes,
			this.jobs,
			this.deadLetters,
			this.polls,
			this.errors,
			this.lastSuccess,
		]) {
			lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
			for (const { labels, value } of metric.values.values()) {
				const text = Object.entries(labels)
					.map(([k, v]) => `${k}="${escapeLabel(v)}"`)
					.join(",");
				lines.push(`${metric.name}${text ? `{${text}}` : ""} ${value}`);
			}
		}
		return `${lines.join("\n")}\n`;
	}
}

export function configFromEnv(env: NodeJS.ProcessEnv): ExporterConfig {
	const missing = ["CF_ACCOUNT_ID", "CF_API_TOKEN"].filter((n) => !env[n]);
	if (missing.length > 0) throw new Error(`set ${missing.join(" and ")}`);
	return {
		accountId: env.CF_ACCOUNT_ID as string,
		apiToken: env.CF_API_TOKEN as string,
		dataset: env.AE_DATASET || "secureconnect_metrics",
		environment: env.AE_ENVIRONMENT || "production",
		pollSeconds: Number(env.POLL_SECONDS) || 60,
		lagSeconds: Number(env.LAG_SECONDS) || 120,
	};
}

if (import.meta.main) {
	const config = configFromEnv(process.env);
	const exporter = new AnalyticsExporter(config);
	const host = process.env.EXPORTER_HOST || "127.0.0.1";
	const port = Number(process.env.EXPORTER_PORT) || 9465;
	const server = http.createServer((req, res) => {
		const path = new URL(req.url ?? "/", "http://localhost").pathname;
		if (path === "/metrics") {
			res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(exporter.render());
		} else if (path === "/health") {
			res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
		} else {
			res.writeHead(404).end();
		}
	});
	server.listen(port, host, () => process.stdout.write(`analytics exporter on http://${host}:${port}/metrics\n`));
	void exporter.poll();
	const timer = setInterval(() => void exporter.poll(), config.pollSeconds * 1000);
	for (const signal of ["SIGINT", "SIGTERM"] as const) {
		process.on(signal, () => {
			clearInterval(timer);
			server.close(() => process.exit(0));
		});
	}
}
