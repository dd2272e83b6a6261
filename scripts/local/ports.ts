import { createSocket } from "node:dgram";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";

async function tcpPort(port = 0): Promise<number | undefined> {
	const server = createServer();
	const bound = await new Promise<boolean>((resolve) => {
		server.once("error", () => resolve(false));
		server.listen(port, "127.0.0.1", () => resolve(true));
	});
	if (!bound) return undefined;
	const { port: chosen } = server.address() as AddressInfo;
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return chosen;
}

async function udpFree(port: number): Promise<boolean> {
	const socket = createSocket("udp4");
	return await new Promise((resolve) => {
		socket.once("error", () => resolve(false));
		socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
	});
}

/** A TCP port on 127.0.0.1 that was free a moment ago (and for UDP too with `udp`, e.g. for coturn). */
export async function freePort(options: { udp?: boolean } = {}): Promise<number> {
	for (let attempt = 0; attempt < 50; attempt++) {
		const port = await tcpPort();
		if (port !== undefined && (!options.udp || (await udpFree(port)))) return port;
	}
	throw new Error("no free port on 127.0.0.1");
}
