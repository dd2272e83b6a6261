// The workerd processes `wrangler dev` starts, read from /proc (Linux only, no
// tool beyond it): which one runs the Worker and its Durable Objects, which is
// the reload proxy in front of it, where the runtime listens, and the CPU they
// use. The bench and the load test measure and address the runtime directly,
// since production has no such proxy.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

function parentOf(pid: number): number | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
	} catch {
		return undefined; // gone
	}
}

/** Command lines of the live workerd processes below `root` (exited children have no VmRSS). */
export function workerdProcesses(root: number): Map<number, string[]> {
	const children = new Map<number, number[]>();
	for (const name of readdirSync("/proc")) {
		if (!/^\d+$/.test(name)) continue;
		const parent = parentOf(Number(name));
		if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
	}
	const found = new Map<number, string[]>();
	const queue = [root];
	while (queue.length > 0) {
		for (const child of children.get(queue.shift() as number) ?? []) {
			queue.push(child);
			try {
				const args = readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0");
				if (args[0]?.endsWith("/workerd") && /VmRSS:/.test(readFileSync(`/proc/${child}/status`, "utf8"))) {
					found.set(child, args);
				}
			} catch {
				// exited meanwhile
			}
		}
	}
	return found;
}

/**
 * wrangler dev's two kinds of workerd below `root`: the proxy binds the public
 * `port` and relays every request and socket; the runtime runs the Worker.
 */
export function wranglerWorkerd(root: number, port: number): { runtime: number[]; proxy: number[] } {
	const runtime: number[] = [];
	const proxy: number[] = [];
	for (const [pid, args] of workerdProcesses(root)) {
		(args.some((arg) => arg.includes(`entry=127.0.0.1:${port}`)) ? proxy : runtime).push(pid);
	}
	return { runtime, proxy };
}

/** CPU seconds (user + system) the processes have used so far. */
export function cpuSeconds(pids: number[]): number {
	let ticks = 0;
	for (const pid of pids) {
		try {
			const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			ticks += Number(fields[11]) + Number(fields[12]);
		} catch {
			// gone
		}
	}
	return ticks / 100; // USER_HZ
}

/** TCP ports the process listens on (IPv4 and IPv6). */
export function listeningPorts(pid: number): number[] {
	const inodes = new Set<string>();
	for (const fd of readdirSync(`/proc/${pid}/fd`)) {
		try {
			const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
			if (inode) inodes.add(inode);
		} catch {
			// closed meanwhile
		}
	}
	const ports = new Set<number>();
	for (const table of ["tcp", "tcp6"]) {
		let text: string;
		try {
			text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
		} catch {
			continue;
		}
		for (const line of text.split("\n").slice(1)) {
			const fields = line.trim().split(/\s+/);
			const [, local, , state] = fields;
			const inode = fields[9];
			if (state !== "0A" || !local || !inode || !inodes.has(inode)) continue; // 0A: LISTEN
			ports.add(Number.parseInt(local.split(":")[1] ?? "", 16));
		}
	}
	return [...ports];
}

/** The first of the processes' listening ports where GET /health answers 200: the runtime's own entry. */
export async function runtimeEntry(pids: number[]): Promise<string> {
	for (const pid of pids) {
		for (const port of listeningPorts(pid)) {
			const base = `http://127.0.0.1:${port}`;
			const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
			if (res?.status === 200) return base;
		}
	}
	throw new Error(`no port of the runtime processes ${pids.join(", ")} answers GET /health`);
}
