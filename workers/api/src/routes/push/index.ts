import { createRoute } from "@hono/zod-openapi";
import {
	CreatePushSubscriptionRequest,
	type DeviceId,
	PushProviders,
	PushSubscription,
	type PushSubscriptionId,
	PushSubscriptionList,
} from "@secureconnect/protocol";
import { and, asc, eq, ne, sql } from "drizzle-orm";
import { z } from "zod";
import { devices, pushSubscriptions } from "../../db/schema/index.ts";
import { ApiError } from "../../lib/api-error.ts";
import { fromBase64 } from "../../lib/crypto.ts";
import { newId } from "../../lib/ids.ts";
import { acceptableEndpoint } from "../../notifications/push/webpush.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Notifications"];
export const MAX_SUBSCRIPTIONS_PER_DEVICE = 10;

const create = createRoute({
	method: "post",
	path: "/v1/push/subscriptions",
	tags,
	summary: "Register a device's push address (FCM token, APNs device token or Web Push subscription)",
	...authed,
	request: { body: jsonBody(CreatePushSubscriptionRequest) },
	responses: {
		201: jsonResponse(z.object({ subscription: PushSubscription }), "Registered (or refreshed)"),
		...errorResponses(400, 401, 404, 409),
	},
});
const list = createRoute({
	method: "get",
	path: "/v1/push/subscriptions",
	tags,
	summary: "Own push subscriptions",
	...authed,
	responses: { 200: jsonResponse(PushSubscriptionList, "Subscriptions"), ...errorResponses(401) },
});
const remove = createRoute({
	method: "delete",
	path: "/v1/push/subscriptions/{id}",
	tags,
	summary: "Remove a push subscription",
	...authed,
	request: { params: z.object({ id: z.string().max(64) }) },
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});
const providers = createRoute({
	method: "get",
	path: "/v1/push/providers",
	tags,
	summary: "Push services this server delivers through, and the VAPID key browsers subscribe with",
	...authed,
	responses: { 200: jsonResponse(PushProviders, "Providers"), ...errorResponses(401) },
});

const toSubscription = (s: typeof pushSubscriptions.$inferSelect) => ({
	id: s.id as PushSubscriptionId,
	kind: s.kind,
	deviceId: s.deviceId as DeviceId,
	createdAt: s.createdAt.toISOString(),
	lastSuccessAt: s.lastSuccessAt?.toISOString() ?? null,
	failureCount: s.failureCount,
});

async function isP256Point(p256dh: string): Promise<boolean> {
	try {
		await crypto.subtle.importKey("raw", fromBase64(p256dh), { name: "ECDH", namedCurve: "P-256" }, false, []);
		return true;
	} catch {
		return false;
	}
}

export const pushRoutes = createRouter()
	.openapi(create, async (c) => {
		const body = c.req.valid("json");
		const push = c.var.config.push;
		if (!push[body.kind]) {
			throw new ApiError(400, "BAD_REQUEST", `This server does not deliver ${body.kind} pushes.`);
		}
		const me = c.var.auth.userId;
		const [device] = await c.var.db
			.select({ id: devices.id })
			.from(devices)
			.where(and(eq(devices.id, body.deviceId), eq(devices.userId, me)));
		if (!device) throw new ApiError(404, "NOT_FOUND", "No such device.");
		let target: string;
		if (body.kind === "webpush") {
			const allowInsecure = push.webpush?.allowInsecureEndpoints ?? false;
			if (!acceptableEndpoint(body.subscription.endpoint, allowInsecure)) {
				throw new ApiError(400, "VALIDATION_FAILED", "subscription.endpoint is not a push service https URL.");
			}
			if (!(await isP256Point(body.subscription.keys.p256dh))) {
				throw new ApiError(400, "VALIDATION_FAILED", "subscription.keys.p256dh is not a P-256 public key.");
			}
			target = body.subscription.endpoint;
		} else {
			target = body.kind === "apns" ? body.token.toLowerCase() : body.token;
		}
		const [count] = await c.var.db
			.select({ n: sql<number>`count(*)::int` })
			.from(pushSubscriptions)
			.where(and(eq(pushSubscriptions.deviceId, device.id), ne(pushSubscriptions.target, target)));
		if ((count?.n ?? 0) >= MAX_SUBSCRIPTIONS_PER_DEVICE) {
			throw new ApiError(
				409,
				"CONFLICT",
				`A device may have at most ${MAX_SUBSCRIPTIONS_PER_DEVICE} push subscriptions.`,
			);
		}
		const values = {
			userId: me,
			deviceId: device.id,
			token: body.kind === "webpush" ? null : target,
			subscription:
				body.kind === "webpush"
					? {
							endpoint: body.subscription.endpoint,
							keys: { p256dh: body.subscription.keys.p256dh, auth: body.subscription.keys.auth },
						}
					: null,
		};
		// The same push address registered again (or by whoever uses the device now) is one subscription.
		const [row] = await c.var.db
			.insert(pushSubscriptions)
			.values({ id: newId("pushSubscription"), kind: body.kind, target, ...values })
			.onConflictDoUpdate({
				target: [pushSubscriptions.kind, pushSubscriptions.target],
				set: { ...values, failureCount: 0, lastFailureAt: null },
			})
			.returning();
		if (!row) throw new Error("push subscription upsert returned nothing");
		return c.json({ subscription: toSubscription(row) }, 201);
	})
	.openapi(list, async (c) => {
		const rows = await c.var.db
			.select()
			.from(pushSubscriptions)
			.where(eq(pushSubscriptions.userId, c.var.auth.userId))
			.orderBy(asc(pushSubscriptions.createdAt));
		return c.json({ subscriptions: rows.map(toSubscription) }, 200);
	})
	.openapi(remove, async (c) => {
		const [row] = await c.var.db
			.delete(pushSubscriptions)
			.where(and(eq(pushSubscriptions.id, c.req.valid("param").id), eq(pushSubscriptions.userId, c.var.auth.userId)))
			.returning({ id: pushSubscriptions.id });
		if (!row) throw new ApiError(404, "NOT_FOUND", "No such push subscription.");
		return c.body(null, 204);
	})
	.openapi(providers, async (c) => {
		const push = c.var.config.push;
		return c.json(
			{
				fcm: Boolean(push.fcm),
				apns: Boolean(push.apns),
				webpush: push.webpush ? { vapidPublicKey: push.webpush.publicKey } : null,
			},
			200,
		);
	});
