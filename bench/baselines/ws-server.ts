// Baseline for the realtime bench: a minimal Node `ws` broadcast server. Every
// text frame from any client is relayed, unchanged, to every open client
// (the sender included). No auth, no storage, no parsing.
// Run: node bench/baselines/ws-server.ts <port>; prints "listening <port>".
import { WebSocket, WebSocketServer } from "ws";

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });

wss.on("connection", (ws) => {
	ws.on("message", (data, isBinary) => {
		for (const client of wss.clients) {
			if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
		}
	});
});
wss.on("listening", () => process.stdout.write(`listening ${port}\n`));
wss.on("error", (error) => {
	process.stderr.write(`ws baseline: ${error.message}\n`);
	process.exit(1);
});
process.on("SIGTERM", () => process.exit(0));
