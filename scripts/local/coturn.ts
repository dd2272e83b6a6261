// coturn on loopback for local calls, with the same TURN REST secret the api mints credentials from.
import { execFileSync, type SpawnOptions } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Managed, start } from "./processes.ts";

export const TURN_PORT = 3478;

export function findTurnserver(): string | undefined {
	for (const candidate of ["turnserver", "/usr/bin/turnserver"]) {
		try {
			execFileSync("sh", ["-c", `command -v ${candidate}`], { stdio: "pipe" });
			return candidate;
		} catch {
			// try next
		}
	}
	return undefined;
}

/** `spawnOptions` go to the child (e.g. `stdio: "ignore"` keeps its log out of a test's output). */
export function startCoturn(
	binary: string,
	secret: string,
	stateDir: string,
	port = TURN_PORT,
	spawnOptions: SpawnOptions = {},
): Managed {
	mkdirSync(stateDir, { recursive: true });
	const configPath = join(stateDir, "turnserver.conf");
	writeFileSync(
		configPath,
		[
			"listening-ip=127.0.0.1",
			"relay-ip=127.0.0.1",
			`listening-port=${port}`,
			"use-auth-secret",
			`static-auth-secret=${secret}`,
			"realm=secureconnect.local",
			"fingerprint",
			"no-cli",
			"no-tls",
			"no-dtls",
			"no-multicast-peers",
			// Needed to relay to loopback peers in local tests; never in production.
			"allow-loopback-peers",
			"log-file=stdout",
			// Its own pid file, so several local instances (dev, call tests) do not share /var/run/turnserver.pid.
			`pidfile=${join(stateDir, "turnserver.pid")}`,
			"simple-log",
			"",
		].join("\n"),
		{ mode: 0o600 },
	);
	return start("coturn", binary, ["-c", configPath], spawnOptions);
}

/** Kills a coturn started by startCoturn (if it still runs), waits for it, and removes its state folder. */
export async function stopCoturn(coturn: Managed | undefined, stateDir: string): Promise<void> {
	if (coturn && coturn.child.exitCode === null && coturn.child.signalCode === null) {
		coturn.child.kill("SIGKILL");
		await coturn.exited;
	}
	if (stateDir) rmSync(stateDir, { recursive: true, force: true });
}
