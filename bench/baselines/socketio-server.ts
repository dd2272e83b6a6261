// Baseline for the realtime bench: a Socket.IO server (WebSocket transport
// only). A "send" event gets the next in-memory sequence number, is broadcast
// to every client as "message" (the sender included) and acknowledged with the
// event's callback. Nothing is stored: acks mean "seen by the process", not "durable".
// Run: node bench/baselines/socketio-server.ts <port>; prints "listening <port>".
import { createServer } from "node:http";
import { Server } from "socket.io";

interface SendPayload {
	clientId: string;
	ciphertext: string;
}

const port = Number(process.argv[2]);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false, perMessageDeflate: false });
let seq = 0;

io.on("connection", (socket) => {
	socket.on("send", (payload: SendPayload, ack?: (seq: number) => void) => {
		seq++;
		io.emit("message", { seq, clientId: payload.clientId, ciphertext: payload.ciphertext });
		if (typeof ack === "function") ack(seq);
	});
});
http.on("error", (error) => {
	process.stderr.write(`socket.io baseline: ${error.message}\n`);
	process.exit(1);
});
http.listen(port, "127.0.0.1", () => process.stdout.write(`listening ${port}\n`));
process.on("SIGTERM", () => process.exit(0));
