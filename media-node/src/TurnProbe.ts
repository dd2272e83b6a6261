// Is TURN up? Every MEDIA_TURN_PROBE_INTERVAL_MS the probe performs a real
// TURN Allocate against each `turn:`/`turns:` URL of TURN_URLS (TurnClient.ts:
// 401 challenge, authenticated Allocate, Refresh LIFETIME 0 to free the relay)
// with TURN REST credentials minted from TURN_SECRET exactly as the api mints
// them for clients: username `<expiry>:<MEDIA_TURN_PROBE_USER>`, credential
// base64(HMAC-SHA1(secret, username)). A probe that has not finished after
// MEDIA_TURN_PROBE_TIMEOUT_MS failed with reason "timeout".
//
// The results feed /metrics (secureconnect_turn_up{server},
// secureconnect_turn_allocation_failures_total{server,reason},
// secureconnect_turn_probes_total{server}, secureconnect_turn_probe_duration_seconds{server})
// and the heartbeat's `turn` field, from which the api decides whether to offer
// TURN to clients (turn: "unavailable" when every report says down). Results
// older than REPORT_MAX_AGE_INTERVALS intervals are not reported.

import { createHmac } from "node:crypto";
import type { NodeTurnReport } from "../../protocol/src/calls.ts";
import { parseTurnUrl } from "../../protocol/src/turn.ts";
import { TurnError, type TurnFailureReason } from "./errors.ts";
import type { Logger } from "./Logger.ts";
import { TurnClient } from "./TurnClient.ts";

/** Lifetime of the probe's own credentials (seconds). */
export const PROBE_CREDENTIAL_TTL_SECONDS = 300;
/** A result older than this many probe intervals is left out of heartbeats. */
export const REPORT_MAX_AGE_INTERVALS = 3;
/** NodeTurnReport's limits (protocol/src/calls.ts). */
const MAX_REPORTED_SERVERS = 32;
const MAX_REPORTED_URL_LENGTH = 512;

export type TurnProbeOptions = {
	/** TURN URLs to probe (`stun:` and unparsable entries are ignored). */
	urls: string[];
	secret: string;
	user: string;
	intervalMs: number;
	timeoutMs: number;
	logger: Logger;
	/** Called after a probe in which some server went up or down (or got its first result). */
	onChange?: () => void;
};

export type TurnServerStatus = {
	url: string;
	/** Undefined until the first probe finishes. */
	up: boolean | undefined;
	reason: TurnFailureReason | undefined;
	/** Duration of the last probe (ms). */
	latencyMs: number | undefined;
	checkedAt: Date | undefined;
	probes: number;
	failures: ReadonlyMap<TurnFailureReason, number>;
};

export type ProbeResult = { url: string; up: boolean; reason?: TurnFailureReason; latencyMs: number; message?: string };

/** TURN REST credentials (draft-uberti-behave-turn-rest), as the api's calls/turn.ts mints them. */
export function turnRestCredentials(
	secret: string,
	user: string,
	ttlSeconds: number,
	now = Date.now(),
): { username: string; credential: string } {
	const username = `${Math.floor(now / 1000) + ttlSeconds}:${user}`;

	return { username, credential: createHmac("sha1", secret).update(username).digest("base64") };
}

type ServerState = Omit<TurnServerStatus, "failures"> & { failures: Map<TurnFailureReason, number> };

export class TurnProbe {
	#options: TurnProbeOptions;
	#logger: Logger;
	#servers: ServerState[];
	#timer: NodeJS.Timeout | undefined;
	#running: Promise<ProbeResult[]> | undefined;

	static create(options: TurnProbeOptions): TurnProbe {
		return new TurnProbe(options);
	}

	private constructor(options: TurnProbeOptions) {
		this.#options = options;
		this.#logger = options.logger.child({ component: "turn-probe" });
		this.#servers = [...new Set(options.urls)]
			.filter((url) => parseTurnUrl(url) !== undefined)
			.map((url) => ({
				url,
				up: undefined,
				reason: undefined,
				latencyMs: undefined,
				checkedAt: undefined,
				probes: 0,
				failures: new Map(),
			}));
	}

	/** The URLs probed. */
	get urls(): string[] {
		return this.#servers.map((s) => s.url);
	}

	/** Probes now, then every interval. */
	start(): void {
		if (this.#timer !== undefined || this.#servers.length === 0) {
			return;
		}

		this.#logger.info("probing TURN", {
			servers: this.urls,
			intervalMs: this.#options.intervalMs,
			timeoutMs: this.#options.timeoutMs,
		});
		void this.probe();
		this.#timer = setInterval(() => void this.probe(), this.#options.intervalMs);
		this.#timer.unref();
	}

	stop(): void {
		clearInterval(this.#timer);
		this.#timer = undefined;
	}

	/** Probes every server once, concurrently (a call during a run shares it). Never throws. */
	probe(): Promise<ProbeResult[]> {
		this.#running ??= this.#probeAll().finally(() => {
			this.#running = undefined;
		});

		return this.#running;
	}

	async #probeAll(): Promise<ProbeResult[]> {
		const before = this.#servers.map((s) => s.up);
		const results = await Promise.all(this.#servers.map((server) => this.#probeOne(server)));

		if (this.#servers.some((s, i) => s.up !== before[i])) {
			try {
				this.#options.onChange?.();
			} catch (error) {
				this.#logger.error("TURN state listener failed", { error });
			}
		}

		return results;
	}

	/** Each server's state and counters (for /metrics). */
	status(): TurnServerStatus[] {
		return this.#servers.map((s) => ({ ...s, failures: new Map(s.failures) }));
	}

	/** What the heartbeat carries: fresh results only; undefined when nothing is fresh. */
	report(now = Date.now()): NodeTurnReport | undefined {
		const maxAge = this.#options.intervalMs * REPORT_MAX_AGE_INTERVALS;
		const servers = this.#servers
			.filter((s) => s.up !== undefined && s.checkedAt !== undefined && now - s.checkedAt.getTime() <= maxAge)
			// Within the protocol's bounds (NodeTurnReport), or the api would refuse the whole heartbeat.
			.filter((s) => s.url.length <= MAX_REPORTED_URL_LENGTH)
			.slice(0, MAX_REPORTED_SERVERS)
			.map((s) => ({
				url: s.url,
				up: s.up === true,
				...(s.reason === undefined ? {} : { reason: s.reason }),
				checkedAt: (s.checkedAt ?? new Date(now)).toISOString(),
			}));

		return servers.length === 0 ? undefined : { servers };
	}

	async #probeOne(server: ServerState): Promise<ProbeResult> {
		const result = await this.#allocate(server.url);
		const wasUp = server.up;

		server.probes++;
		server.up = result.up;
		server.reason = result.reason;
		server.latencyMs = result.latencyMs;
		server.checkedAt = new Date();
		if (result.reason !== undefined) {
			server.failures.set(result.reason, (server.failures.get(result.reason) ?? 0) + 1);
		}

		const fields = { server: server.url, latencyMs: Math.round(result.latencyMs * 10) / 10 };

		// One line per change of state; steady state stays at debug.
		if (!result.up && wasUp !== false) {
			this.#logger.warn("TURN allocation failed", { ...fields, reason: result.reason, error: result.message });
		} else if (result.up && wasUp !== true) {
			this.#logger.info("TURN allocates", fields);
		} else {
			this.#logger.debug("TURN probe", { ...fields, up: result.up, reason: result.reason });
		}

		return result;
	}

	async #allocate(url: string): Promise<ProbeResult> {
		const started = performance.now();
		const server = parseTurnUrl(url);

		if (!server) {
			return { url, up: false, reason: "bad_response", latencyMs: 0, message: "not a TURN URL" };
		}

		const { username, credential } = turnRestCredentials(
			this.#options.secret,
			this.#options.user,
			PROBE_CREDENTIAL_TTL_SECONDS,
		);
		const deadline = Date.now() + this.#options.timeoutMs;
		let client: TurnClient | undefined;

		try {
			client = await TurnClient.connect(server, deadline);

			const allocation = await client.allocate(username, credential);

			if (!allocation.released) {
				this.#logger.debug("TURN allocation not freed; it expires by itself", { server: url });
			}

			return { url, up: true, latencyMs: performance.now() - started };
		} catch (error) {
			const turnError = error instanceof TurnError ? error : undefined;

			return {
				url,
				up: false,
				reason: turnError?.reason ?? "bad_response",
				latencyMs: performance.now() - started,
				message: error instanceof Error ? error.message : String(error),
			};
		} finally {
			client?.close();
		}
	}
}
