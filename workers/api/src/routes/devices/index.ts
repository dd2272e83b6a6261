import { createRoute } from "@hono/zod-openapi";
import { CreateDeviceRequest, Device, type DeviceId, DeviceList, type UserId } from "@secureconnect/protocol";
import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { revokeSession } from "../../auth/sessions.ts";
import { closeSessionSockets, conversationIdsOf, notifyUsers, roomOf } from "../../conversations/service.ts";
import type { Database } from "../../db/client.ts";
import { devices } from "../../db/schema/index.ts";
import type { Env } from "../../env.ts";
import { ApiError } from "../../lib/api-error.ts";
import { fromBase64 } from "../../lib/crypto.ts";
import { isEd25519PublicKey } from "../../lib/ed25519.ts";
import { newId } from "../../lib/ids.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse, NO_CONTENT } from "../../openapi.ts";

const tags = ["Devices and keys"];
export const MAX_DEVICES_PER_USER = 20;

const create = createRoute({
	method: "post",
	path: "/v1/devices",
	tags,
	summary: "Register a device and bind its Ed25519 credential to the user",
	...authed,
	request: { body: jsonBody(CreateDeviceRequest) },
	responses: { 201: jsonResponse(z.object({ device: Device }), "Registered"), ...errorResponses(400, 401, 409) },
});
const list = createRoute({
	method: "get",
	path: "/v1/devices",
	tags,
	summary: "Own devices",
	...authed,
	responses: { 200: jsonResponse(DeviceList, "Devices"), ...errorResponses(401) },
});
const remove = createRoute({
	method: "delete",
	path: "/v1/devices/{id}",
	tags,
	summary: "Remove a device",
	...authed,
	request: { params: z.object({ id: z.string().max(64) }) },
	responses: { ...NO_CONTENT, ...errorResponses(401, 404) },
});

const toDevice = (d: typeof devices.$inferSelect) => ({
	id: d.id as DeviceId,
	name: d.name,
	credential: d.credential,
	createdAt: d.createdAt.toISOString(),
	lastSeenAt: d.lastSeenAt.toISOString(),
});

/** The credential must be a usable Ed25519 public key, not just 32 bytes. */
function assertEd25519PublicKey(credential: string): void {
	if (!isEd25519PublicKey(fromBase64(credential))) {
		throw new ApiError(400, "VALIDATION_FAILED", "credential is not a valid Ed25519 public key.");
	}
}

export const deviceRoutes = createRouter()
	.openapi(create, async (c) => {
		const body = c.req.valid("json");
		assertEd25519PublicKey(body.credential);
		const owned = await c.var.db.select({ id: devices.id }).from(devices).where(eq(devices.userId, c.var.auth.userId));
		if (owned.length >= MAX_DEVICES_PER_USER) {
			throw new ApiError(409, "CONFLICT", `A user may register at most ${MAX_DEVICES_PER_USER} devices.`);
		}
		const [row] = await c.var.db
			.insert(devices)
			.values({
				id: newId<DeviceId>("device"),
				userId: c.var.auth.userId,
				name: body.name,
				credential: body.credential,
				sessionId: c.var.auth.sessionId,
			})
			.onConflictDoNothing()
			.returning();
		if (!row) throw new ApiError(409, "CONFLICT", "This credential is already registered to a device.");
		await announceDevice(c.env, c.var.db, c.var.auth.userId, row.id, "added");
		return c.json({ device: toDevice(row) }, 201);
	})
	.openapi(list, async (c) => {
		const rows = await c.var.db
			.select()
			.from(devices)
			.where(eq(devices.userId, c.var.auth.userId))
			.orderBy(asc(devices.createdAt));
		return c.json({ devices: rows.map(toDevice) }, 200);
	})
	.openapi(remove, async (c) => {
		const [row] = await c.var.db
			.delete(devices)
			.where(and(eq(devices.id, c.req.valid("param").id), eq(devices.userId, c.var.auth.userId)))
			.returning();
		if (!row) throw new ApiError(404, "NOT_FOUND", "No such device.");
		// The device's session ends and its sockets close; its groups hear of it so members remove its leaf.
		if (row.sessionId) {
			await revokeSession(c.var.db, row.sessionId, "device_removed");
			await closeSessionSockets(c.env, c.var.db, c.var.auth.userId, [row.sessionId]);
		}
		await announceDevice(c.env, c.var.db, c.var.auth.userId, row.id, "removed");
		return c.body(null, 204);
	});

/** Tells the user's other devices and every conversation the user is in. */
async function announceDevice(env: Env, db: Database, userId: string, deviceId: string, change: "added" | "removed") {
	const frame = { type: "device" as const, change, userId: userId as UserId, deviceId: deviceId as DeviceId };
	await notifyUsers(env, [userId], frame);
	const rooms = await conversationIdsOf(db, userId);
	await Promise.allSettled(rooms.map((id) => roomOf(env, id).announce(frame)));
}
