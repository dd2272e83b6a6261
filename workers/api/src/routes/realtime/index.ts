// WebSocket upgrades. With `bearer.<token>` in Sec-WebSocket-Protocol the api
// authenticates before the upgrade and hands the socket to the Durable Object.
// Without it, the socket must send {type:"auth", token} first: a conversation
// room checks that itself; the user channel is found through the token, so the
// api reads that first frame and then relays to the user's channel.
import { ClientFrame } from "@secureconnect/protocol";
import type { Context } from "hono";
import {
	CLOSE_UNAUTHORIZED,
	PROTOCOL_HEADER,
	SESSION_HEADER,
	tokenFromProtocols,
	USER_HEADER,
} from "../../../../chat-room/src/SocketServer.ts";
import { authenticate, authenticateMember } from "../../auth/authenticate.ts";
import { channelOf, roomOf } from "../../conversations/service.ts";
import { openDatabase } from "../../db/client.ts";
import { ApiError } from "../../lib/api-error.ts";
import { REQUEST_ID_HEADER } from "../../middleware/request-id/index.ts";
import { createRouter } from "../../openapi.ts";
import type { AppEnv } from "../../types.ts";
import { documentUpgrades } from "./document.ts";

const AUTH_FRAME_TIMEOUT_MS = 10_000;

function requireUpgrade(c: Context<AppEnv>): void {
	if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
		throw new ApiError(426, "BAD_REQUEST", "This endpoint is a WebSocket: send Upgrade: websocket.");
	}
}

/** Forwards the upgrade to an object; the response is rebuilt so middleware can add headers. */
async function handOver(
	stub: { fetch(request: Request): Promise<Response> },
	c: Context<AppEnv>,
	headers: Record<string, string>,
) {
	const forwarded = new Headers(c.req.raw.headers);
	for (const name of [USER_HEADER, SESSION_HEADER, PROTOCOL_HEADER]) forwarded.delete(name);
	for (const [k, v] of Object.entries(headers)) forwarded.set(k, v);
	forwarded.set(REQUEST_ID_HEADER, c.var.requestId);
	const res = await stub.fetch(new Request(c.req.raw.url, { headers: forwarded }));
	if (res.status !== 101 || !res.webSocket) {
		const status = res.status === 403 ? 403 : res.status === 429 ? 429 : 503;
		const code = status === 403 ? "FORBIDDEN" : status === 429 ? "RATE_LIMITED" : "SERVICE_UNAVAILABLE";
		throw new ApiError(status, code, (await res.text()) || "The socket was refused.");
	}
	return new Response(null, { status: 101, webSocket: res.webSocket, headers: res.headers });
}

const router = createRouter();
documentUpgrades(router);

export const realtimeRoutes = router
	.get("/v1/conversations/:id/ws", async (c) => {
		requireUpgrade(c);
		const { token, selected } = tokenFromProtocols(c.req.header("sec-websocket-protocol") ?? null);
		const id = c.req.param("id");
		if (!token) {
			if (!/^cnv_[a-z2-7]{10,40}$/.test(id)) throw new ApiError(404, "NOT_FOUND", "No such conversation.");
			return handOver(roomOf(c.env, id), c, selected ? { [PROTOCOL_HEADER]: selected } : {});
		}
		const principal = await authenticateMember(c.var.config, c.var.db, token, id);
		// 404 as for unknown conversations: no existence leak.
		if (!principal.member) throw new ApiError(404, "NOT_FOUND", "No such conversation.");
		return handOver(roomOf(c.env, id), c, {
			[USER_HEADER]: principal.userId,
			[SESSION_HEADER]: principal.sessionId,
			...(selected && { [PROTOCOL_HEADER]: selected }),
		});
	})
	.get("/v1/ws", async (c) => {
		requireUpgrade(c);
		const { token, selected } = tokenFromProtocols(c.req.header("sec-websocket-protocol") ?? null);
		if (token) {
			const principal = await authenticate(c.var.config, c.var.db, token);
			return handOver(channelOf(c.env, principal.userId), c, {
				[USER_HEADER]: principal.userId,
				[SESSION_HEADER]: principal.sessionId,
				...(selected && { [PROTOCOL_HEADER]: selected }),
			});
		}
		return relayAfterAuthFrame(c);
	});

/** First-frame authentication for the user channel: authenticate, then relay both ways. */
function relayAfterAuthFrame(c: Context<AppEnv>): Response {
	const { 0: client, 1: server } = new WebSocketPair();
	server.accept();
	const config = c.var.config;
	const env = c.env;
	const url = c.req.raw.url;
	const requestId = c.var.requestId;
	let upstream: WebSocket | undefined;
	const pending: string[] = [];
	const timer = setTimeout(() => server.close(CLOSE_UNAUTHORIZED, "no auth frame"), AUTH_FRAME_TIMEOUT_MS);
	const refuse = (message: string) => {
		server.send(JSON.stringify({ type: "error", code: "UNAUTHORIZED", message }));
		server.close(CLOSE_UNAUTHORIZED, "unauthorized");
	};
	const relayed = new Promise<void>((done) => {
		server.addEventListener("close", () => {
			clearTimeout(timer);
			upstream?.close(1000, "client closed");
			done();
		});
		server.addEventListener("message", async (event) => {
			if (upstream) return upstream.send(event.data);
			if (pending.length > 0) return pending.push(String(event.data));
			pending.push(String(event.data));
			const frame = ClientFrame.safeParse(safeJson(String(event.data)));
			if (!frame.success || frame.data.type !== "auth") return refuse('Authenticate first: send {type:"auth", token}.');
			try {
				// The request's own connection closes with the upgrade response: open one for this check.
				const handle = openDatabase(config.database);
				const principal = await authenticate(config, handle.db, frame.data.token).finally(() => handle.close());
				const res = await channelOf(env, principal.userId).fetch(
					new Request(url, {
						headers: {
							upgrade: "websocket",
							[USER_HEADER]: principal.userId,
							[SESSION_HEADER]: principal.sessionId,
							[REQUEST_ID_HEADER]: requestId,
						},
					}),
				);
				const socket = res.webSocket;
				if (!socket) return refuse("The channel refused the socket.");
				socket.accept();
				clearTimeout(timer);
				upstream = socket;
				socket.addEventListener("message", (e) => server.send(e.data));
				socket.addEventListener("close", (e) => server.close(e.code === 1005 ? 1000 : e.code, e.reason));
				for (const queued of pending.slice(1)) socket.send(queued);
			} catch (error) {
				refuse(error instanceof ApiError ? error.message : "Authentication is unavailable.");
			}
		});
	});
	c.executionCtx.waitUntil(relayed);
	return new Response(null, { status: 101, webSocket: client });
}

function safeJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}
