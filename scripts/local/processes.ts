// Child processes for the local stack: prefixed output, and one place that stops them all.
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";

export interface Managed {
	name: string;
	child: ChildProcess;
	exited: Promise<number | null>;
}

const children: Managed[] = [];

function pipe(name: string, stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream): void {
	if (!stream) return;
	let buffer = "";
	stream.setEncoding("utf8");
	stream.on("data", (chunk: string) => {
		buffer += chunk;
		const lines = buffer.split("\n");
		buffer = lines.pop() ?? "";
		for (const line of lines) out.write(`[${name}] ${line}\n`);
	});
}

export function start(name: string, command: string, args: string[], options: SpawnOptions = {}): Managed {
	const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
	pipe(name, child.stdout, process.stdout);
	pipe(name, child.stderr, process.stderr);
	const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
	const managed = { name, child, exited };
	children.push(managed);
	return managed;
}

export async function stopAll(graceMs = 5_000): Promise<void> {
	await Promise.all(
		children.map(async ({ child, exited }) => {
			if (child.exitCode !== null || child.signalCode !== null) return;
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
			await exited;
			clearTimeout(timer);
		}),
	);
}

/** Polls a URL until it answers 2xx or the deadline passes. */
export async function waitForHttp(url: string, timeoutMs: number): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		try {
			const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
			if (res.ok) return true;
		} catch {
			// not up yet
		}
		await new Promise((r) => setTimeout(r, 250));
	}
	return false;
}
