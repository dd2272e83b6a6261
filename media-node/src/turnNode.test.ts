// The media node with its TURN probe against a real coturn on loopback: the
// heartbeat carries the probe's results (and a change of TURN state sends one
// at once), /metrics exposes secureconnect_turn_*, and the ICE failures that
// clients report with `reportIceFailure` are counted once per transport.

import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { startCoturn, stopCoturn } from "../../scripts/local/coturn.ts";
import { ensureCoturn } from "../../scripts/local/install-coturn.ts";
import { freePort } from "../../scripts/local/ports.ts";
import type { Managed } from "../../scripts/local/processes.ts";
import { Logger } from "./Logger.ts";
import { TurnProbe } from "./TurnProbe.ts";
import { callToken, SignalingClient, type TestNode, waitFor } from "./testing/fixtures.ts";
import { nodeHarness } from "./testing/harness.ts";

const CALL = "call_turnturnturnturn";
const TURN_SECRET = randomBytes(32).toString("base64url");

type TurnReport = { servers: Array<{ url: string; up: boolean; reason?: string; checkedAt: string }> };

let coturn: Managed | undefined;
let turnPort = 0;
let deadPort = 0;
let dir = "";
const harness = nodeHarness();
const { node } = harness;

beforeAll(async () => {
	const turnserver = ensureCoturn();

	turnPort = await freePort({ udp: true });
	deadPort = await freePort();
	dir = mkdtempSync(join(tmpdir(), "turn-node-"));
	coturn = startCoturn(turnserver, TURN_SECRET, dir, turnPort, { stdio: "ignore" });

	// Until coturn allocates.
	const ready = TurnProbe.create({
		urls: [`turn:127.0.0.1:${turnPort}?transport=udp`],
		secret: TURN_SECRET,
		user: "ready-check",
		intervalMs: 60_000,
		timeoutMs: 1_000,
		logger: Logger.create({ level: "error", sink: () => {} }),
	});

	for (const deadline = Date.now() + 20_000; !(await ready.probe())[0]?.up; ) {
		if (Date.now() > deadline) throw new Error("coturn does not allocate");
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
}, 300_000);

afterAll(async () => {
	await stopCoturn(coturn, dir);
});

async function metrics(target: TestNode): Promise<string> {
	return await (await fetch(`${target.httpUrl}/metrics`)).text();
}

function sample(text: string, name: string, labels: string): number | undefined {
	const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));

	return line === undefined ? undefined : Number(line.slice(name.length + labels.length + 3));
}

describe("TURN probe in the media node", () => {
	it("reports TURN up and down in heartbeats and on /metrics", async () => {
		const up = `turn:127.0.0.1:${turnPort}?transport=udp`;
		const refused = `turn:127.0.0.1:${deadPort}?transport=tcp`;
		const target = await node({
			TURN_URLS: [`stun:127.0.0.1:${turnPort}`, up, refused].join(","),
			TURN_SECRET,
			// Slow enough that /metrics below still shows the probe run the heartbeat reported, even on a busy machine.
			MEDIA_TURN_PROBE_INTERVAL_MS: "10000",
			MEDIA_TURN_PROBE_TIMEOUT_MS: "3000",
		});

		expect(target.node.turnProbe?.urls).toEqual([up, refused]);

		// The heartbeat timer is 60 s: this one was sent because the probe's first results changed the TURN state.
		const beat = await waitFor(
			() =>
				harness.api
					.heartbeats()
					.map((h) => (h.body as { turn?: TurnReport }).turn)
					.find((turn) => turn?.servers.find((s) => s.url === up)?.up === true),
			{ what: "a heartbeat with TURN up", timeoutMs: 15_000 },
		);

		expect(beat.servers.map((s) => [s.url, s.up, s.reason])).toEqual([
			[up, true, undefined],
			[refused, false, "refused"],
		]);

		const text = await metrics(target);

		expect(sample(text, "secureconnect_turn_up", `server="${up}"`)).toBe(1);
		expect(sample(text, "secureconnect_turn_up", `server="${refused}"`)).toBe(0);
		expect(sample(text, "secureconnect_turn_probes_total", `server="${up}"`)).toBeGreaterThanOrEqual(1);
		expect(
			sample(text, "secureconnect_turn_allocation_failures_total", `server="${refused}",reason="refused"`),
		).toBeGreaterThanOrEqual(1);
		expect(sample(text, "secureconnect_turn_allocation_failures_total", `server="${up}",reason="timeout"`)).toBe(0);
		expect(sample(text, "secureconnect_turn_probe_duration_seconds", `server="${up}"`)).toBeGreaterThan(0);
		expect(text).toContain("# TYPE secureconnect_turn_allocation_failures_total counter");
		// The secret never shows.
		expect(text).not.toContain(TURN_SECRET);
		expect(JSON.stringify(harness.api.heartbeats().map((h) => h.rawBody))).not.toContain(TURN_SECRET);
	});

	it("probes nothing without TURN_SECRET or TURN URLs; heartbeats then carry no turn", async () => {
		const target = await node({ TURN_URLS: `turn:127.0.0.1:${turnPort}`, MEDIA_HEARTBEAT_MS: "200" });

		expect(target.node.turnProbe).toBeUndefined();

		const beat = await waitFor(() => harness.api.heartbeats()[0], { what: "a heartbeat" });

		expect(beat.body).not.toHaveProperty("turn");
		expect(await metrics(target)).not.toMatch(/^secureconnect_turn_up\{/m);
	});
});

describe("reportIceFailure", () => {
	it("counts a client's ICE failure once per transport until it restarts ICE", async () => {
		const target = await node();
		const before = await metrics(target);
		const relayBefore = sample(before, "secureconnect_client_ice_failures_total", 'relay="true"') ?? 0;
		const directBefore = sample(before, "secureconnect_client_ice_failures_total", 'relay="false"') ?? 0;
		const client = await SignalingClient.open(
			target.url,
			await callToken({ key: harness.key, issuer: harness.api.url, userId: "usr_alice", callId: CALL }),
		);

		harness.defer(() => client.close());
		await client.notification("ready");

		const { rtpCapabilities } = await client.request("getRouterRtpCapabilities", {});

		await client.request("join", { rtpCapabilities });

		const send = await client.request("createWebRtcTransport", { direction: "send" });
		const recv = await client.request("createWebRtcTransport", { direction: "recv" });

		await client.request("reportIceFailure", { transportId: send.id, relay: true });
		await client.request("reportIceFailure", { transportId: send.id, relay: true });
		await client.request("reportIceFailure", { transportId: recv.id, relay: false });

		let text = await metrics(target);

		expect(sample(text, "secureconnect_client_ice_failures_total", 'relay="true"')).toBe(relayBefore + 1);
		expect(sample(text, "secureconnect_client_ice_failures_total", 'relay="false"')).toBe(directBefore + 1);

		await client.request("restartIce", { transportId: send.id });
		await client.request("reportIceFailure", { transportId: send.id, relay: true });
		text = await metrics(target);
		expect(sample(text, "secureconnect_client_ice_failures_total", 'relay="true"')).toBe(relayBefore + 2);

		await expect(client.request("reportIceFailure", { transportId: "nope", relay: true })).rejects.toMatchObject({
			code: "NOT_FOUND",
		});
		await expect(client.request("reportIceFailure", { transportId: send.id })).rejects.toMatchObject({
			code: "BAD_REQUEST",
		});
	});
});
