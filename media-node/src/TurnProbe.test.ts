// The TURN probe against a real coturn on loopback (scripts/local/coturn.ts,
// use-auth-secret; installed with apt-get when missing, like the call tests).

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseTurnUrl } from "../../protocol/src/turn.ts";
import { startCoturn, stopCoturn } from "../../scripts/local/coturn.ts";
import { ensureCoturn } from "../../scripts/local/install-coturn.ts";
import { freePort } from "../../scripts/local/ports.ts";
import type { Managed } from "../../scripts/local/processes.ts";
import { turnCredential } from "../../workers/api/src/calls/turn.ts";
import { Logger } from "./Logger.ts";
import { newTransactionId, StunMethod } from "./stun.ts";
import { TurnClient } from "./TurnClient.ts";
import { TurnProbe, turnRestCredentials } from "./TurnProbe.ts";

const SECRET = randomBytes(32).toString("base64url");

function logger(lines: Array<Record<string, unknown>> = []): Logger {
	return Logger.create({ level: "debug", sink: (line) => lines.push(JSON.parse(line)) });
}

function probeFor(
	urls: string[],
	options: { secret?: string; timeoutMs?: number; lines?: Array<Record<string, unknown>> } = {},
) {
	return TurnProbe.create({
		urls,
		secret: options.secret ?? SECRET,
		user: "probe-test",
		intervalMs: 60_000,
		timeoutMs: options.timeoutMs ?? 3_000,
		logger: logger(options.lines),
	});
}

/** Until coturn answers a Binding request over UDP and accepts TCP connections. */
async function waitForTurn(port: number, timeoutMs: number): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	const udp = parseTurnUrl(`turn:127.0.0.1:${port}?transport=udp`);
	const tcp = parseTurnUrl(`turn:127.0.0.1:${port}?transport=tcp`);

	if (!udp || !tcp) throw new Error("bad test URL");
	while (Date.now() < deadline) {
		const ready = await Promise.all(
			[udp, tcp].map(async (server) => {
				let client: TurnClient | undefined;

				try {
					client = await TurnClient.connect(server, Date.now() + 500);
					await client.request({
						method: StunMethod.binding,
						class: "request",
						transactionId: newTransactionId(),
						attributes: [],
					});

					return true;
				} catch {
					return false;
				} finally {
					client?.close();
				}
			}),
		);

		if (ready.every(Boolean)) return;
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
	throw new Error(`coturn did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

describe("TURN REST credentials", () => {
	it("are minted exactly as the api mints them for clients", async () => {
		const now = 1_700_000_000_000;
		const { username, credential } = turnRestCredentials(SECRET, "probe-test", 300, now);

		expect(username).toBe("1700000300:probe-test");
		expect(credential).toBe(await turnCredential(SECRET, username));
	});
});

describe("TurnProbe against a real coturn", () => {
	let coturn: Managed | undefined;
	let port = 0;
	let dir = "";
	let urls: string[] = [];

	beforeAll(async () => {
		const turnserver = ensureCoturn();

		port = await freePort({ udp: true });
		dir = mkdtempSync(join(tmpdir(), "turn-probe-"));
		coturn = startCoturn(turnserver, SECRET, dir, port, { stdio: "ignore" });
		urls = [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`];
		await waitForTurn(port, 20_000);
	}, 300_000);

	afterAll(async () => {
		await stopCoturn(coturn, dir);
	});

	it("allocates a relay over UDP and TCP with the shared secret and frees it", async () => {
		for (const url of urls) {
			const server = parseTurnUrl(url);

			if (!server) throw new Error(url);

			const client = await TurnClient.connect(server, Date.now() + 3_000);

			try {
				const { username, credential } = turnRestCredentials(SECRET, "probe-test", 300);
				const allocation = await client.allocate(username, credential);

				expect(allocation.relayed).toMatchObject({ family: "IPv4", address: "127.0.0.1" });
				expect(allocation.relayed.port).toBeGreaterThan(0);
				expect(allocation.mapped).toMatchObject({ address: "127.0.0.1" });
				expect(allocation.lifetime).toBeGreaterThan(0);
				expect(allocation.released).toBe(true);
			} finally {
				client.close();
			}
		}
	});

	it("reports both transports up, with latency, and says so in the heartbeat report", async () => {
		const lines: Array<Record<string, unknown>> = [];
		const probe = probeFor([...urls, "stun:127.0.0.1:3478"], { lines });

		expect(probe.urls).toEqual(urls);
		expect(probe.report()).toBeUndefined();

		const results = await probe.probe();

		expect(results.map((r) => [r.url, r.up, r.reason])).toEqual(urls.map((url) => [url, true, undefined]));
		for (const status of probe.status()) {
			expect(status).toMatchObject({ up: true, reason: undefined, probes: 1 });
			expect(status.failures.size).toBe(0);
			expect(status.latencyMs).toBeGreaterThan(0);
			expect(status.latencyMs).toBeLessThan(3_000);
		}
		expect(probe.report()?.servers).toEqual(urls.map((url) => ({ url, up: true, checkedAt: expect.any(String) })));
		expect(lines.filter((l) => l.msg === "TURN allocates").map((l) => l.server)).toEqual(expect.arrayContaining(urls));

		// A later probe counts again; results older than 3 intervals are not reported.
		await probe.probe();
		expect(probe.status().map((s) => s.probes)).toEqual([2, 2]);
		expect(probe.report(Date.now() + 3 * 60_000 + 1_000)).toBeUndefined();
	});

	it("fails with reason unauthorized when the secret is wrong", async () => {
		const lines: Array<Record<string, unknown>> = [];
		const probe = probeFor(urls, { secret: "not-the-secret-not-the-secret-not-the-secret", lines });
		const results = await probe.probe();

		expect(results.map((r) => [r.up, r.reason])).toEqual([
			[false, "unauthorized"],
			[false, "unauthorized"],
		]);
		expect(probe.status().map((s) => Object.fromEntries(s.failures))).toEqual([
			{ unauthorized: 1 },
			{ unauthorized: 1 },
		]);
		expect(probe.report()?.servers.map((s) => [s.up, s.reason])).toEqual([
			[false, "unauthorized"],
			[false, "unauthorized"],
		]);
		expect(lines.filter((l) => l.msg === "TURN allocation failed" && l.level === "warn")).toHaveLength(2);
		// The secret never reaches the logs.
		expect(JSON.stringify(lines)).not.toContain(SECRET);
	});

	it("times out against a TCP server that never answers", async () => {
		const silent = net.createServer(() => {});

		await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));

		const { port: silentPort } = silent.address() as net.AddressInfo;

		try {
			const probe = probeFor([`turn:127.0.0.1:${silentPort}?transport=tcp`], { timeoutMs: 800 });
			const [result] = await probe.probe();

			expect(result).toMatchObject({ up: false, reason: "timeout" });
			expect(result?.latencyMs).toBeGreaterThanOrEqual(700);
		} finally {
			silent.close();
		}
	});

	it("fails with reason tls when a turns: server's certificate is not trusted", async () => {
		const certDir = mkdtempSync(join(tmpdir(), "turn-probe-tls-"));

		try {
			const made = spawnSync(
				"openssl",
				["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
					.concat(["-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem")])
					.concat(["-days", "1", "-subj", "/CN=127.0.0.1"]),
				{ stdio: "ignore" },
			);

			if (made.status !== 0) {
				throw new Error("openssl could not make a self-signed certificate");
			}

			const server = tls.createServer(
				{ key: readFileSync(join(certDir, "key.pem")), cert: readFileSync(join(certDir, "cert.pem")) },
				(socket) => socket.on("error", () => {}),
			);

			server.on("tlsClientError", () => {});
			await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

			try {
				const { port: tlsPort } = server.address() as net.AddressInfo;
				const [result] = await probeFor([`turns:127.0.0.1:${tlsPort}?transport=tcp`]).probe();

				expect(result).toMatchObject({ up: false, reason: "tls" });
			} finally {
				server.close();
			}
		} finally {
			rmSync(certDir, { recursive: true, force: true });
		}
	});

	it("fails when coturn is stopped: UDP times out, TCP is refused; up again once it is back", async () => {
		const probe = probeFor(urls, { timeoutMs: 1_500 });

		expect((await probe.probe()).map((r) => r.up)).toEqual([true, true]);

		coturn?.child.kill("SIGTERM");
		await coturn?.exited;

		const down = await probe.probe();

		expect(down.map((r) => [r.up, r.reason])).toEqual([
			[false, "timeout"],
			[false, "refused"],
		]);
		expect(down[0]?.latencyMs).toBeGreaterThanOrEqual(1_400);
		expect(probe.report()?.servers.map((s) => s.up)).toEqual([false, false]);

		coturn = startCoturn(ensureCoturn(), SECRET, dir, port, { stdio: "ignore" });
		await waitForTurn(port, 20_000);
		expect((await probe.probe()).map((r) => r.up)).toEqual([true, true]);
		expect(probe.status().map((s) => Object.fromEntries(s.failures))).toEqual([{ timeout: 1 }, { refused: 1 }]);
	}, 60_000);
});
