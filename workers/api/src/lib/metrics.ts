// Metrics to Workers Analytics Engine (binding METRICS, dataset
// secureconnect_metrics). Every write is fire-and-forget: writeDataPoint()
// returns at once, an absent binding is a no-op and a throwing one is ignored,
// so a metric can never slow down or fail the work it describes.
//
// One layout for every event, so one SQL query shape reads them all:
//
//   blob1  event       "request" | "socket" | "message" | "queue"
//   blob2  name        route pattern | object class | message kind | job kind
//   blob3  detail      HTTP method   | "open"/"close" | transport   | —
//   blob4  outcome     status class ("2xx") | — | — | "delivered"/"retried"/"dead_letter"/"skipped"
//   blob5  environment ENVIRONMENT ("dev", "staging", "production")
//   double1 value      latency ms | sockets now in the object | ciphertext bytes | attempts
//   double2 count      1 per event (sum it with _sample_interval)
//   double3 status     HTTP status code (requests only)
//   index1  "<event>:<name>" (the sampling key), at most 96 bytes
//
// Example (Analytics Engine SQL API), API error rate per route over 5 minutes:
//   SELECT blob2 AS route, SUM(_sample_interval * double2) AS requests,
//          SUM(IF(blob4 = '5xx', _sample_interval * double2, 0)) AS errors
//   FROM secureconnect_metrics
//   WHERE blob1 = 'request' AND blob5 = 'production' AND timestamp > NOW() - INTERVAL '5' MINUTE
//   GROUP BY route ORDER BY errors DESC
// scripts/ops/analytics-exporter.ts turns these events into Prometheus counters.

export const METRICS_DATASET = "secureconnect_metrics";

export type MetricEvent = "request" | "socket" | "message" | "queue";

/** What the helpers need from the bindings: the dataset (optional) and the environment's name. */
export interface MetricsEnv {
	METRICS?: AnalyticsEngineDataset | undefined;
	ENVIRONMENT?: string | undefined;
}

export interface MetricPoint {
	event: MetricEvent;
	name: string;
	detail?: string;
	outcome?: string;
	value?: number;
	count?: number;
	status?: number;
}

const MAX_INDEX_BYTES = 96;
const MAX_BLOB_CHARS = 256;

function clip(text: string, max: number): string {
	return text.length > max ? text.slice(0, max) : text;
}

function indexOf(event: string, name: string): string {
	let index = `${event}:${name}`;
	// Analytics Engine refuses an index above 96 bytes; route patterns are ASCII, but be exact.
	while (new TextEncoder().encode(index).length > MAX_INDEX_BYTES) index = index.slice(0, -1);
	return index;
}

const finite = (n: number | undefined, fallback: number) =>
	typeof n === "number" && Number.isFinite(n) ? n : fallback;

/** Writes one data point. Never throws, never awaits. */
export function writeMetric(env: MetricsEnv | undefined, point: MetricPoint): void {
	const dataset = env?.METRICS;
	if (!dataset) return;
	try {
		dataset.writeDataPoint({
			indexes: [indexOf(point.event, point.name)],
			blobs: [
				point.event,
				clip(point.name, MAX_BLOB_CHARS),
				clip(point.detail ?? "", MAX_BLOB_CHARS),
				clip(point.outcome ?? "", MAX_BLOB_CHARS),
				clip(env?.ENVIRONMENT ?? "dev", 32),
			],
			doubles: [finite(point.value, 0), finite(point.count, 1), finite(point.status, 0)],
		});
	} catch {
		// Metrics must never fail the request or job they describe.
	}
}

export function statusClass(status: number): string {
	return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

/** One HTTP request: the route pattern (never the raw URL), method, status class, latency. */
export function recordRequest(
	env: MetricsEnv | undefined,
	request: { route: string; method: string; status: number; durationMs: number },
): void {
	writeMetric(env, {
		event: "request",
		name: request.route,
		detail: request.method,
		outcome: statusClass(request.status),
		value: request.durationMs,
		status: request.status,
	});
}

/** A socket opened or closed on a Durable Object; `sockets` is how many the object holds now. */
export function recordSocket(
	env: MetricsEnv | undefined,
	socket: { object: string; change: "open" | "close"; sockets: number },
): void {
	writeMetric(env, { event: "socket", name: socket.object, detail: socket.change, value: socket.sockets });
}

/**
 * Messages stored in a conversation log (kind: message, edit, delete): `count`
 * of them (default 1) with `bytes` of ciphertext in all, never the text. A
 * batch stored together is one data point (Analytics Engine caps points per
 * invocation).
 */
export function recordMessage(
	env: MetricsEnv | undefined,
	message: { kind: string; bytes: number; count?: number; transport?: "socket" | "rest" },
): void {
	writeMetric(env, {
		event: "message",
		name: message.kind,
		detail: message.transport ?? "",
		value: message.bytes,
		count: message.count ?? 1,
	});
}

export type QueueOutcome = "delivered" | "skipped" | "retried" | "dead_letter";

/** A notification job handled by the queue consumer. */
export function recordQueueJob(
	env: MetricsEnv | undefined,
	job: { kind: string; outcome: QueueOutcome; attempts: number },
): void {
	writeMetric(env, { event: "queue", name: job.kind, outcome: job.outcome, value: job.attempts });
}
