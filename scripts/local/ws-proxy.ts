// A WebSocket-to-TCP bridge speaking what the Neon serverless driver speaks
// (`/v1?address=host:port`, binary frames carrying the Postgres wire protocol),
// so workerd code reaches a local Postgres exactly as it reaches Neon.
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import type { WebSocketServer as WebSocketServerType } from "ws";

// vitest resolves "ws" to its browser stub inside globalSetup; require() gets the Node build.
const { WebSocketServer } = createRequire(import.meta.url)("ws") as typeof import("ws");

/** Postgres frontend Terminate message: 'X' followed by int32 length 4. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

export interface WsProxyOptions {
	/** The only TCP target the proxy will dial: it is never an open relay. */
	target: { host: string; port: number };
	port?: number;
	host?: string;
}

export interface WsProxy {
	port: number;
	/** Value for the worker's DB_WS_PROXY variable. */
	address: string;
	close(): Promise<void>;
}

export async function startWsProxy(options: WsProxyOptions): Promise<WsProxy> {
	const server: Server = createServer((_req, res) => {
		res.writeHead(426, { "content-type": "text/plain" }).end("websocket only\n");
	});
	const wss: WebSocketServerType = new WebSocketServer({ server, path: "/v1" });
	const allowed = new Set([
		`${options.target.host}:${options.target.port}`,
		`localhost:${options.target.port}`,
		`127.0.0.1:${options.target.port}`,
	]);

	wss.on("connection", (ws, req) => {
		const address = new URL(req.url ?? "/", "http://proxy").searchParams.get("address") ?? "";
		if (!allowed.has(address)) {
			ws.close(1008, "address not allowed");
			return;
		}
		const tcp = connect(options.target.port, options.target.host);
		tcp.setNoDelay(true);
		const pending: Buffer[] = [];
		let connected = false;
		tcp.on("connect", () => {
			connected = true;
			for (const chunk of pending) tcp.write(chunk);
			pending.length = 0;
		});
		tcp.on("data", (data) => {
			if (ws.readyState === ws.OPEN) ws.send(data);
		});
		tcp.on("error", () => ws.close(1011, "upstream error"));
		tcp.on("close", () => {
			if (ws.readyState === ws.OPEN) ws.close(1000);
		});
		ws.on("message", (data: Buffer) => {
			if (!connected) pending.push(data);
			else tcp.write(data);
			// PGlite's socket server keeps the connection open after Terminate;
			// closing here lets the client's end() return at once.
			if (data.length >= TERMINATE.length && data.subarray(data.length - 5).equals(TERMINATE)) {
				tcp.end();
			}
		});
		ws.on("close", () => tcp.destroy());
		ws.on("error", () => tcp.destroy());
	});

	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
	});
	const port = (server.address() as AddressInfo).port;
	return {
		port,
		address: `${options.host ?? "127.0.0.1"}:${port}`,
		close: async () => {
			for (const client of wss.clients) client.terminate();
			await new Promise<void>((resolve) => wss.close(() => resolve()));
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
