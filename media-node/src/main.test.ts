// Runs the real entry point as a child process: startup, /health, JSON logs
// and graceful shutdown on SIGTERM.

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { afterEach, describe, expect, it } from "vitest";

import { callToken, FakeApi, SignalingClient, signingKey, TEST_SECRET, waitFor } from "./testing/fixtures.ts";

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "main.ts");

type Running = { child: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> };

const children: ChildProcess[] = [];

afterEach(() => {
	for (const child of children.splice(0)) {
		if (child.exitCode === null && child.signalCode === null) {
			child.kill("SIGKILL");
		}
	}
});

function start(env: Record<string, string>): Running {
	const child = spawn(process.execPath, [MAIN], {
		env: { ...process.env, MEDIA_RTC_PORT: "0", ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	const lines: Record<string, unknown>[] = [];
	let buffered = "";

	children.push(child);
	child.stdout?.setEncoding("utf8");
	child.stdout?.on("data", (chunk: string) => {
		buffered += chunk;

		for (let newline = buffered.indexOf("\n"); newline !== -1; newline = buffered.indexOf("\n")) {
			lines.push(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
			buffered = buffered.slice(newline + 1);
		}
	});

	const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

	return { child, lines, exited };
}

async function waitForLine(running: Running, msg: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
	const deadline = Date.now() + timeoutMs;

	while (Date.now() < deadline) {
		const line = running.lines.find((l) => l.msg === msg);

		if (line) {
			return line;
		}
		if (running.child.exitCode !== null) {
			break;
		}
		await new Promise((resolve) => setTimeout(resolve, 25));
	}
	throw new Error(`no "${msg}" line; got ${JSON.stringify(running.lines)}`);
}

describe("media node process", () => {
	it("starts, serves /health and exits 0 on SIGTERM", async () => {
		const running = start({ MEDIA_NODE_PORT: "0", MEDIA_WORKERS: "2", LOG_LEVEL: "info" });
		const listening = await waitForLine(running, "media node listening");

		expect(listening).toMatchObject({ level: "info", workers: 2 });

		const res = await fetch(`http://127.0.0.1:${String(listening.port)}/health`, {
			headers: { "x-request-id": "main-test" },
		});

		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ status: "ok", workers: 2 });

		running.child.kill("SIGTERM");

		expect(await running.exited).toBe(0);
		expect(running.lines.map((l) => l.msg)).toEqual(
			expect.arrayContaining(["shutting down", "mediasoup workers closed", "shutdown complete"]),
		);
		for (const line of running.lines) {
			expect(line).toHaveProperty("level");
			expect(line).toHaveProperty("time");
			expect(line).toHaveProperty("msg");
		}
	});

	it("drains on SIGTERM: peers told, final heartbeat draining:true, exits 0 once the call ends", async () => {
		const api = await FakeApi.start();
		const key = await signingKey("kid-main");

		api.keys.push(key);

		try {
			const running = start({
				MEDIA_NODE_PORT: "0",
				MEDIA_WORKERS: "1",
				API_URL: api.url,
				MEDIA_NODE_SECRET: TEST_SECRET,
				MEDIA_NODE_ID: "main-test-node",
				MEDIA_DRAIN_TIMEOUT_MS: "10000",
			});
			const listening = await waitForLine(running, "media node listening");
			const token = await callToken({ key, issuer: api.url, userId: "usr_alice", callId: "call_main" });
			const peer = await SignalingClient.open(String(listening.url), token);
			const { rtpCapabilities } = await peer.request("getRouterRtpCapabilities", {});

			await peer.request("join", { rtpCapabilities });
			running.child.kill("SIGTERM");

			expect(await peer.notification("nodeDraining")).toMatchObject({ timeoutMs: 10000 });

			const beat = await waitFor(() => api.heartbeats().find((h) => (h.body as { draining: boolean }).draining), {
				what: "draining heartbeat",
			});

			expect(beat).toMatchObject({ signatureOk: true, body: { nodeId: "main-test-node", draining: true } });
			expect(running.child.exitCode).toBeNull();

			await peer.request("leave", {});
			expect(await running.exited).toBe(0);
			expect(api.events().map((e) => e.type)).toEqual([
				"call.started",
				"participant.joined",
				"participant.left",
				"call.ended",
			]);
			expect(running.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["draining", "shutdown complete"]));
		} finally {
			await api.close();
		}
	});

	it("exits 1 with a JSON error on invalid configuration", async () => {
		const running = start({ MEDIA_NODE_PORT: "not-a-port" });

		expect(await running.exited).toBe(1);
		expect(running.lines).toEqual([
			expect.objectContaining({
				level: "error",
				msg: "invalid configuration",
				issues: [{ variable: "MEDIA_NODE_PORT", message: expect.stringContaining("not-a-port") }],
			}),
		]);
	});
});
