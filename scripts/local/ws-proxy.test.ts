import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWsProxy, type WsProxy } from "./ws-proxy.ts";

const { WebSocket } = createRequire(import.meta.url)("ws") as typeof import("ws");

let upstream: Server;
let upstreamPort: number;
let proxy: WsProxy;
const upstreamSockets: Socket[] = [];

beforeAll(async () => {
	upstream = createServer((socket) => {
		upstreamSockets.push(socket);
		socket.on("data", (data) => socket.write(Buffer.concat([Buffer.from("echo:"), data])));
	});
	await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
	upstreamPort = (upstream.address() as AddressInfo).port;
	proxy = await startWsProxy({ target: { host: "127.0.0.1", port: upstreamPort } });
});

afterAll(async () => {
	await proxy.close();
	await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

function open(address: string) {
	return new WebSocket(`ws://${proxy.address}/v1?address=${address}`);
}

describe("Neon-compatible WebSocket proxy", () => {
	it("relays bytes both ways to the allowed target", async () => {
		const ws = open(`127.0.0.1:${upstreamPort}`);
		await new Promise((resolve) => ws.once("open", resolve));
		const reply = new Promise<Buffer>((resolve) => ws.once("message", (data: Buffer) => resolve(data)));
		ws.send(Buffer.from("hello"));
		expect((await reply).toString()).toBe("echo:hello");
		ws.close();
	});

	it("refuses any other address, so it is never an open relay", async () => {
		const ws = open("10.0.0.1:5432");
		const code = await new Promise<number>((resolve) => ws.once("close", (c: number) => resolve(c)));
		expect(code).toBe(1008);
	});

	it("closes the TCP side when the client sends the Postgres Terminate message", async () => {
		const before = upstreamSockets.length;
		const ws = open(`localhost:${upstreamPort}`);
		await new Promise((resolve) => ws.once("open", resolve));
		ws.send(Buffer.from("ping"));
		await new Promise((resolve) => ws.once("message", resolve));
		const socket = upstreamSockets[before];
		expect(socket).toBeDefined();
		const ended = new Promise((resolve) => socket?.once("end", resolve));
		ws.send(Buffer.from([0x58, 0, 0, 0, 4]));
		await ended;
		ws.close();
	});
});
