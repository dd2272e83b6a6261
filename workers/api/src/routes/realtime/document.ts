// The two upgrades are plain GET routes (a 101 carries no JSON body for a
// route schema to describe); the OpenAPI document still lists them, with how
// a socket authenticates and what each refusal means.

import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { APP_SUBPROTOCOL, BATCH_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX } from "@secureconnect/protocol";
import { errorResponses } from "../../openapi.ts";
import type { AppEnv } from "../../types.ts";

const tags = ["Realtime"];

const UpgradeHeaders = z.object({
	upgrade: z.literal("websocket"),
	"sec-websocket-protocol": z
		.string()
		.optional()
		.openapi({
			description:
				`\`${BEARER_SUBPROTOCOL_PREFIX}<accessToken>\` authenticates the socket before the upgrade; without it ` +
				'the first frame must be `{"type":"auth","token"}`. Offer `' +
				`${BATCH_SUBPROTOCOL}\` (or \`${APP_SUBPROTOCOL}\`) beside it: the server selects that one.`,
			example: `${BEARER_SUBPROTOCOL_PREFIX}eyJhbGciOiJFZERTQSJ9…, ${BATCH_SUBPROTOCOL}`,
		}),
});

const switching = {
	101: {
		description:
			"Switching Protocols: JSON text frames follow (client: auth, send, edit, delete, resume, read, typing, presence, ping, " +
			"batch; server: ready, message, ack, resumed, receipt, typing, presence, device, welcome, error, pong, and batch on " +
			"the batch subprotocol). Close codes: 4001 unauthorized or session ended, 4003 removed, 4008 idle, 4029 too many sockets.",
	},
};

export function documentUpgrades(router: OpenAPIHono<AppEnv>): void {
	router.openAPIRegistry.registerPath({
		method: "get",
		path: "/v1/conversations/{id}/ws",
		tags,
		summary:
			"A conversation's socket: ordered messages, acks after durable storage, resume, receipts, typing, presence",
		request: { params: z.object({ id: z.string().max(64) }), headers: UpgradeHeaders },
		responses: {
			...switching,
			...errorResponses(401, 403, 404, 426, 429, 503),
		},
	});
	router.openAPIRegistry.registerPath({
		method: "get",
		path: "/v1/ws",
		tags,
		summary: "The user channel: one socket per device for activity in all of the user's conversations, calls, friends",
		request: { headers: UpgradeHeaders },
		responses: {
			101: {
				description:
					"Switching Protocols: server frames ready, activity, membership, friend, call, welcome, device, keys_low, error, pong.",
			},
			...errorResponses(401, 426, 429, 503),
		},
	});
}
