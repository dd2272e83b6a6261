// /metrics in the Prometheus text exposition format (version 0.0.4), written
// by hand, plus the periodic sampler behind the bitrate and CPU figures.
//
// The sampler runs every MEDIA_STATS_INTERVAL_MS: it sums recvBitrate and
// sendBitrate of every WebRTC transport (transport.getStats()) and turns each
// worker's CPU time (getResourceUsage) into a 0–1 share of one core over the
// interval. The heartbeat's `load.cpu` is the busiest worker's share, since
// one saturated worker is what degrades its calls first.

import os from "node:os";
import * as mediasoup from "mediasoup";
import { TURN_PROBE_FAILURE_REASONS } from "../../protocol/src/calls.ts";
import type { ApiReporter } from "./ApiReporter.ts";
import { clientIceFailures } from "./iceFailures.ts";
import type { Logger } from "./Logger.ts";
import type { RoomRegistry } from "./RoomRegistry.ts";
import type { SignalingServer } from "./SignalingServer.ts";
import { setupFailures } from "./setupFailures.ts";
import type { TurnServerStatus } from "./TurnProbe.ts";
import type { WorkerPool } from "./WorkerPool.ts";

export const METRICS_PATH = "/metrics";
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
const PREFIX = "secureconnect_media_";

export type SamplerSnapshot = {
	/** Sum of every transport's receive bitrate (bits/s) at the last sample. */
	recvBitrate: number;
	sendBitrate: number;
	/** Share of one core each worker used over the last interval, by worker index. */
	workerCpu: Map<number, number>;
	/** CPU time (s) each worker has used, by worker index. */
	workerCpuSeconds: Map<number, number>;
	sampledAt: number | undefined;
};

export class StatsSampler {
	#pool: WorkerPool;
	#rooms: RoomRegistry;
	#logger: Logger;
	#intervalMs: number;
	#timer: NodeJS.Timeout | undefined;
	#running: Promise<void> | undefined;
	#previousCpu = new Map<number, { pid: number; cpuMs: number; at: number }>();
	#snapshot: SamplerSnapshot = {
		recvBitrate: 0,
		sendBitrate: 0,
		workerCpu: new Map(),
		workerCpuSeconds: new Map(),
		sampledAt: undefined,
	};

	static create(options: { pool: WorkerPool; rooms: RoomRegistry; logger: Logger; intervalMs: number }): StatsSampler {
		return new StatsSampler(options);
	}

	private constructor(options: { pool: WorkerPool; rooms: RoomRegistry; logger: Logger; intervalMs: number }) {
		this.#pool = options.pool;
		this.#rooms = options.rooms;
		this.#logger = options.logger.child({ component: "stats" });
		this.#intervalMs = options.intervalMs;
	}

	get snapshot(): SamplerSnapshot {
		return this.#snapshot;
	}

	/** Busiest worker's CPU share over the last interval (0–1). */
	get maxWorkerCpu(): number {
		return Math.max(0, ...this.#snapshot.workerCpu.values());
	}

	start(): void {
		void this.sample();
		this.#timer = setInterval(() => void this.sample(), this.#intervalMs);
		this.#timer.unref();
	}

	stop(): void {
		clearInterval(this.#timer);
		this.#timer = undefined;
	}

	/** Takes one sample now (concurrent calls share it). */
	async sample(): Promise<void> {
		this.#running ??= this.#sample().finally(() => {
			this.#running = undefined;
		});

		await this.#running;
	}

	async #sample(): Promise<void> {
		try {
			const transports = [...this.#rooms.rooms()].flatMap((room) => [...room.transports()]);
			const stats = await Promise.all(
				transports.map((transport) => (transport.closed ? Promise.resolve([]) : transport.getStats().catch(() => []))),
			);
			let recvBitrate = 0;
			let sendBitrate = 0;

			for (const entries of stats) {
				for (const entry of entries) {
					recvBitrate += entry.recvBitrate;
					sendBitrate += entry.sendBitrate;
				}
			}

			const now = Date.now();
			const workerCpu = new Map<number, number>();
			const workerCpuSeconds = new Map<number, number>();
			const current = await this.#pool.cpuUsage();

			for (const sample of current) {
				const previous = this.#previousCpu.get(sample.index);

				workerCpuSeconds.set(sample.index, sample.cpuMs / 1000);
				if (previous && previous.pid === sample.pid && now > previous.at) {
					const share = (sample.cpuMs - previous.cpuMs) / (now - previous.at);

					workerCpu.set(sample.index, Math.min(1, Math.max(0, Math.round(share * 1000) / 1000)));
				}
				this.#previousCpu.set(sample.index, { pid: sample.pid, cpuMs: sample.cpuMs, at: now });
			}

			this.#snapshot = { recvBitrate, sendBitrate, workerCpu, workerCpuSeconds, sampledAt: now };
		} catch (error) {
			this.#logger.warn("stats sample failed", { error });
		}
	}
}

export type MetricsSources = {
	nodeId: string;
	region: string;
	pool: WorkerPool;
	rooms: RoomRegistry;
	signaling: SignalingServer;
	reporter: ApiReporter;
	sampler: StatsSampler;
	maxPeers: number;
	/** The TURN probe's per-server status; undefined when it is off. */
	turn: (() => TurnServerStatus[]) | undefined;
};

type Sample = { labels?: Record<string, string | number>; value: number };

function escapeLabel(value: string): string {
	return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
	if (Number.isNaN(value)) {
		return "NaN";
	}
	if (!Number.isFinite(value)) {
		return value > 0 ? "+Inf" : "-Inf";
	}

	return String(value);
}

class Exposition {
	#lines: string[] = [];

	metric(name: string, type: "gauge" | "counter", help: string, samples: number | Sample[]): void {
		const list = typeof samples === "number" ? [{ value: samples }] : samples;

		this.#lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
		this.#lines.push(`# TYPE ${name} ${type}`);
		for (const sample of list) {
			const labels = Object.entries(sample.labels ?? {})
				.map(([key, value]) => `${key}="${escapeLabel(String(value))}"`)
				.join(",");

			this.#lines.push(`${name}${labels ? `{${labels}}` : ""} ${formatValue(sample.value)}`);
		}
	}

	toString(): string {
		return `${this.#lines.join("\n")}\n`;
	}
}

/**
 * The TURN probe's results (TurnProbe.ts) and the ICE failures clients report.
 * Every failure reason is exposed from the start (at 0) so rate() sees the first one.
 */
function renderTurnMetrics(out: Exposition, servers: TurnServerStatus[]): void {
	const checked = servers.filter((s) => s.up !== undefined);

	out.metric(
		"secureconnect_turn_up",
		"gauge",
		"1 when the last TURN Allocate probe of the server succeeded (401 challenge, authenticated Allocate, Refresh 0), else 0.",
		checked.map((s) => ({ labels: { server: s.url }, value: s.up ? 1 : 0 })),
	);
	out.metric(
		"secureconnect_turn_probes_total",
		"counter",
		"TURN Allocate probes run, by server.",
		servers.map((s) => ({ labels: { server: s.url }, value: s.probes })),
	);
	out.metric(
		"secureconnect_turn_allocation_failures_total",
		"counter",
		"TURN Allocate probes that failed, by server and reason (timeout, refused, unauthorized, ...).",
		servers.flatMap((s) =>
			TURN_PROBE_FAILURE_REASONS.map((reason) => ({
				labels: { server: s.url, reason },
				value: s.failures.get(reason) ?? 0,
			})),
		),
	);
	out.metric(
		"secureconnect_turn_probe_duration_seconds",
		"gauge",
		"Duration of the last TURN probe of the server (a timeout lasts MEDIA_TURN_PROBE_TIMEOUT_MS).",
		checked.map((s) => ({ labels: { server: s.url }, value: (s.latencyMs ?? 0) / 1000 })),
	);
	out.metric(
		"secureconnect_turn_last_probe_timestamp_seconds",
		"gauge",
		"When the last TURN probe of the server finished (unix seconds).",
		checked.map((s) => ({ labels: { server: s.url }, value: Math.round((s.checkedAt?.getTime() ?? 0) / 1000) })),
	);

	const ice = clientIceFailures();

	out.metric(
		"secureconnect_client_ice_failures_total",
		"counter",
		"Transports whose ICE failed on the client (signaling reportIceFailure); relay: the client had TURN servers.",
		[
			{ labels: { relay: "true" }, value: ice.relay },
			{ labels: { relay: "false" }, value: ice.direct },
		],
	);
}

/** The whole /metrics body. */
export function renderMetrics(sources: MetricsSources): string {
	const out = new Exposition();
	const workers = sources.pool.stats();
	const counts = sources.rooms.counts();
	const signaling = sources.signaling.stats();
	const reporter = sources.reporter.stats();
	const snapshot = sources.sampler.snapshot;
	const memory = process.memoryUsage();
	const cpu = process.cpuUsage();

	out.metric(`${PREFIX}info`, "gauge", "Media node identity (always 1).", [
		{ labels: { node_id: sources.nodeId, region: sources.region, mediasoup_version: mediasoup.version }, value: 1 },
	]);
	out.metric(`${PREFIX}workers`, "gauge", "Configured mediasoup workers.", workers.length);
	out.metric(`${PREFIX}workers_alive`, "gauge", "mediasoup workers alive.", workers.filter((w) => w.alive).length);
	out.metric(
		`${PREFIX}worker_deaths_total`,
		"counter",
		"mediasoup worker deaths since start.",
		workers.reduce((sum, w) => sum + w.deaths, 0),
	);
	out.metric(
		`${PREFIX}worker_routers`,
		"gauge",
		"Routers per mediasoup worker.",
		workers.map((w) => ({ labels: { worker: w.index }, value: w.routers })),
	);
	out.metric(
		`${PREFIX}worker_consumers`,
		"gauge",
		"Consumers (including pipe consumers) per mediasoup worker.",
		workers.map((w) => ({ labels: { worker: w.index }, value: w.consumers })),
	);
	out.metric(
		`${PREFIX}worker_cpu_seconds_total`,
		"counter",
		"CPU time used by each mediasoup worker process (as of the last sample).",
		[...snapshot.workerCpuSeconds].map(([index, seconds]) => ({ labels: { worker: index }, value: seconds })),
	);
	out.metric(
		`${PREFIX}worker_cpu_ratio`,
		"gauge",
		"Share of one core each mediasoup worker used over the last sample interval.",
		[...snapshot.workerCpu].map(([index, ratio]) => ({ labels: { worker: index }, value: ratio })),
	);
	out.metric(`${PREFIX}calls`, "gauge", "Calls (rooms) on this node.", counts.calls);
	out.metric(`${PREFIX}peers`, "gauge", "Participants on this node, including those in reconnect grace.", counts.peers);
	out.metric(`${PREFIX}capacity_peers`, "gauge", "Participants this node accepts (MEDIA_MAX_PEERS).", sources.maxPeers);
	out.metric(`${PREFIX}transports`, "gauge", "WebRTC transports.", counts.transports);
	out.metric(`${PREFIX}producers`, "gauge", "Producers (tracks sent by participants).", counts.producers);
	out.metric(`${PREFIX}consumers`, "gauge", "Consumers (tracks sent to participants).", counts.consumers);
	out.metric(
		`${PREFIX}recv_bitrate_bps`,
		"gauge",
		"Sum of all transports' receive bitrates at the last sample (bits/s).",
		snapshot.recvBitrate,
	);
	out.metric(
		`${PREFIX}send_bitrate_bps`,
		"gauge",
		"Sum of all transports' send bitrates at the last sample (bits/s).",
		snapshot.sendBitrate,
	);
	out.metric(`${PREFIX}sockets`, "gauge", "Open signaling sockets.", signaling.sockets);
	out.metric(`${PREFIX}signaling_requests_total`, "counter", "Signaling requests handled.", signaling.requests);
	out.metric(
		`${PREFIX}signaling_request_errors_total`,
		"counter",
		"Signaling requests answered with an error.",
		signaling.requestErrors,
	);
	out.metric(
		`${PREFIX}sockets_refused_total`,
		"counter",
		"Sockets refused, by error code (bad tokens, full calls, draining…).",
		Object.entries(signaling.authFailures).map(([code, value]) => ({ labels: { code }, value: value ?? 0 })),
	);
	out.metric(
		`${PREFIX}call_setup_failures_total`,
		"counter",
		"Calls that failed to set up: refused sockets by code, and transports whose DTLS failed.",
		[
			...Object.entries(signaling.authFailures).map(([code, value]) => ({
				labels: { reason: code },
				value: value ?? 0,
			})),
			...[...setupFailures()].map(([reason, value]) => ({ labels: { reason }, value })),
		],
	);
	out.metric(`${PREFIX}draining`, "gauge", "1 while the node is shutting down.", sources.rooms.draining ? 1 : 0);
	out.metric(`${PREFIX}webhook_queue`, "gauge", "Room events waiting for delivery to the api.", reporter.queued);
	out.metric(`${PREFIX}webhook_events_sent_total`, "counter", "Room events delivered to the api.", reporter.sent);
	out.metric(
		`${PREFIX}webhook_events_dropped_total`,
		"counter",
		"Room events dropped (queue full or refused by the api).",
		reporter.dropped,
	);
	out.metric(`${PREFIX}webhook_failures_total`, "counter", "Failed event deliveries (retried).", reporter.failures);
	out.metric(`${PREFIX}heartbeats_total`, "counter", "Heartbeats the api accepted.", reporter.heartbeats);
	out.metric(`${PREFIX}heartbeat_failures_total`, "counter", "Heartbeats that failed.", reporter.heartbeatFailures);
	renderTurnMetrics(out, sources.turn?.() ?? []);
	out.metric("process_cpu_user_seconds_total", "counter", "User CPU time of the Node process.", cpu.user / 1e6);
	out.metric("process_cpu_system_seconds_total", "counter", "System CPU time of the Node process.", cpu.system / 1e6);
	out.metric(
		"process_cpu_seconds_total",
		"counter",
		"Total CPU time of the Node process.",
		(cpu.user + cpu.system) / 1e6,
	);
	out.metric("process_resident_memory_bytes", "gauge", "Resident memory of the Node process.", memory.rss);
	out.metric("nodejs_heap_used_bytes", "gauge", "V8 heap in use.", memory.heapUsed);
	out.metric("nodejs_heap_total_bytes", "gauge", "V8 heap allocated.", memory.heapTotal);
	out.metric(
		"process_start_time_seconds",
		"gauge",
		"Start time of the process (unix seconds).",
		Math.round(Date.now() / 1000 - process.uptime()),
	);
	out.metric(`${PREFIX}host_load1`, "gauge", "1-minute load average of the host.", os.loadavg()[0] ?? 0);

	return out.toString();
}
