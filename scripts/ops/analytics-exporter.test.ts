import { describe, expect, it } from "vitest";
import { AnalyticsExporter, configFromEnv, type ExporterConfig, windowQuery } from "./analytics-exporter.ts";

const config: ExporterConfig = {
	accountId: "acc123",
	apiToken: "token-never-logged",
	dataset: "secureconnect_metrics",
	environment: "production",
	pollSeconds: 60,
	lagSeconds: 120,
};

function fakeApi(pages: Array<{ status: number; data?: unknown[] }>) {
	const calls: Array<{ url: string; body: string; auth: string | null }> = [];
	const impl = (async (url: string | URL | Request, init?: RequestInit) => {
		calls.push({ url: String(url), body: String(init?.body), auth: new Headers(init?.headers).get("authorization") });
		const page = pages.shift() ?? { status: 200, data: [] };
		return new Response(JSON.stringify({ data: page.data ?? [] }), { status: page.status });
	}) as typeof fetch;
	return { impl, calls };
}

describe("Analytics Engine → Prometheus exporter", () => {
	it("queries each complete window once, for one environment", () => {
		const sql = windowQuery(config, Date.UTC(2026, 0, 1, 0, 0, 0), Date.UTC(2026, 0, 1, 0, 1, 0));
		expect(sql).toContain("FROM secureconnect_metrics");
		expect(sql).toContain("WHERE blob5 = 'production'");
		expect(sql).toContain(
			"timestamp > toDateTime('2026-01-01 00:00:00') AND timestamp <= toDateTime('2026-01-01 00:01:00')",
		);
		expect(() => windowQuery({ ...config, environment: "x' OR 1=1 --" }, 0, 1)).toThrow();
	});

	it("turns events into counters that grow across polls", async () => {
		const { impl, calls } = fakeApi([
			{
				status: 200,
				data: [
					{ event: "request", name: "/v1/auth/login", detail: "POST", outcome: "2xx", count: 10, value_sum: 500 },
					{ event: "request", name: "/v1/auth/login", detail: "POST", outcome: "5xx", count: 2, value_sum: 40 },
					{ event: "queue", name: "email", detail: "", outcome: "dead_letter", count: 1, value_sum: 6 },
					{ event: "socket", name: "ChatRoom", detail: "open", outcome: "", count: 3, value_sum: 3 },
					{ event: "message", name: "message", detail: "", outcome: "", count: 4, value_sum: 400 },
				],
			},
			{
				status: 200,
				data: [{ event: "request", name: "/v1/auth/login", detail: "POST", outcome: "5xx", count: 1, value_sum: 30 }],
			},
		]);
		const exporter = new AnalyticsExporter(config, impl);
		const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
		await exporter.poll(t0);
		await exporter.poll(t0 + 60_000);
		expect(calls).toHaveLength(2);
		expect(calls[0]?.url).toBe("https://api.cloudflare.com/client/v4/accounts/acc123/analytics_engine/sql");
		expect(calls[0]?.auth).toBe("Bearer token-never-logged");
		// The second window starts where the first ended.
		expect(calls[1]?.body).toContain("timestamp > toDateTime('2026-01-01 11:58:00')");
		const text = exporter.render();
		expect(text).toContain(
			'secureconnect_api_requests_total{route="/v1/auth/login",method="POST",status_class="2xx"} 10',
		);
		expect(text).toContain(
			'secureconnect_api_requests_total{route="/v1/auth/login",method="POST",status_class="5xx"} 3',
		);
		expect(text).toContain('secureconnect_api_request_duration_ms_sum{route="/v1/auth/login",method="POST"} 570');
		expect(text).toContain('secureconnect_queue_dead_letters_total{job="email"} 1');
		expect(text).toContain('secureconnect_queue_dead_letters_total{job="push"} 0');
		expect(text).toContain('secureconnect_queue_jobs_total{job="email",outcome="dead_letter"} 1');
		expect(text).toContain('secureconnect_realtime_socket_events_total{object="ChatRoom",change="open"} 3');
		expect(text).toContain('secureconnect_message_bytes_total{kind="message"} 400');
		expect(text).toContain(`secureconnect_exporter_last_success_timestamp_seconds ${(t0 + 60_000) / 1000}`);
		expect(text).not.toContain("token-never-logged");
	});

	it("keeps a failed window for the next poll and counts the error", async () => {
		const { impl, calls } = fakeApi([{ status: 500 }, { status: 200, data: [] }]);
		const exporter = new AnalyticsExporter(config, impl);
		const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
		await exporter.poll(t0);
		await exporter.poll(t0 + 60_000);
		expect(exporter.render()).toContain("secureconnect_exporter_errors_total 1");
		expect(calls[0]?.body).toContain("toDateTime('2026-01-01 11:57:00')");
		expect(calls[1]?.body).toContain(
			"timestamp > toDateTime('2026-01-01 11:57:00') AND timestamp <= toDateTime('2026-01-01 11:59:00')",
		);
	});

	it("needs an account and a token", () => {
		expect(() => configFromEnv({})).toThrow(/CF_ACCOUNT_ID and CF_API_TOKEN/);
		expect(configFromEnv({ CF_ACCOUNT_ID: "a", CF_API_TOKEN: "t" })).toMatchObject({ environment: "production" });
	});
});
