// Benchmark-only Worker (npm run bench): the realtime part's floor in workerd.
// One Durable Object relays every text frame, unchanged, to every socket it
// holds (the sender included), as bench/baselines/ws-server.ts does in Node:
// no auth, no storage, no parsing. Sockets take the product's path (Worker,
// then the object's hibernatable WebSocket), so the difference between this
// and the product is what the product itself costs.
import { DurableObject } from "cloudflare:workers";

interface Env {
	RELAY: DurableObjectNamespace<Relay>;
}

export class Relay extends DurableObject<Env> {
	override async fetch(): Promise<Response> {
		const { 0: client, 1: server } = new WebSocketPair();
		this.ctx.acceptWebSocket(server);
		return new Response(null, { status: 101, webSocket: client });
	}

	override async webSocketMessage(_ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		for (const ws of this.ctx.getWebSockets()) {
			try {
				ws.send(message);
			} catch {
				// closing
			}
		}
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		try {
			ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
		} catch {
			// already closed
		}
	}
}

export default {
	async fetch(request: Request, env: Env): Promise<Response> {
		if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("ok");
		return env.RELAY.get(env.RELAY.idFromName("relay")).fetch(request);
	},
};
