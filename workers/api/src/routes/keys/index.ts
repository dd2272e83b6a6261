import { createRoute } from "@hono/zod-openapi";
import {
	ClaimKeyPackagesRequest,
	ClaimKeyPackagesResponse,
	type DeviceId,
	KeyPackageCount,
	UploadKeyPackagesRequest,
	UploadKeyPackagesResponse,
} from "@secureconnect/protocol";
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { isBlockedEitherWay } from "../../accounts/users.ts";
import { channelOf } from "../../conversations/service.ts";
import type { Database } from "../../db/client.ts";
import { devices, keyPackages, users } from "../../db/schema/index.ts";
import { availableCount, type Claimed, claimForDevice, devicesOf, isLow } from "../../keys/directory.ts";
import { checkKeyPackage } from "../../keys/key-package.ts";
import { ApiError } from "../../lib/api-error.ts";
import { fromBase64, sha256Hex } from "../../lib/crypto.ts";
import { newId } from "../../lib/ids.ts";
import { authed, createRouter, errorResponses, jsonBody, jsonResponse } from "../../openapi.ts";

const tags = ["Devices and keys"];

const upload = createRoute({
	method: "post",
	path: "/v1/keys/packages",
	tags,
	summary: "Publish a device's MLS KeyPackages (each checked: parses, signed by the device credential)",
	...authed,
	request: { body: jsonBody(UploadKeyPackagesRequest) },
	responses: { 201: jsonResponse(UploadKeyPackagesResponse, "Stored"), ...errorResponses(400, 401, 404) },
});
const countRoute = createRoute({
	method: "get",
	path: "/v1/keys/packages/count",
	tags,
	summary: "How many one-time packages of the device are left",
	...authed,
	request: { query: z.object({ deviceId: z.string().max(64) }) },
	responses: { 200: jsonResponse(KeyPackageCount, "Count"), ...errorResponses(400, 401, 404) },
});
const claim = createRoute({
	method: "post",
	path: "/v1/keys/claim",
	tags,
	summary: "Claim one package per device of each user: one-time packages once each, then the last-resort one",
	...authed,
	request: { body: jsonBody(ClaimKeyPackagesRequest) },
	responses: { 200: jsonResponse(ClaimKeyPackagesResponse, "Packages"), ...errorResponses(400, 401, 403, 404) },
});

async function ownDevice(db: Database, userId: string, deviceId: string) {
	const [device] = await db
		.select()
		.from(devices)
		.where(and(eq(devices.id, deviceId), eq(devices.userId, userId)));
	if (!device) throw new ApiError(404, "NOT_FOUND", "No such device.");
	return device;
}

export const keyRoutes = createRouter()
	.openapi(upload, async (c) => {
		const body = c.req.valid("json");
		const db = c.var.db;
		const device = await ownDevice(db, c.var.auth.userId, body.deviceId);
		const credential = fromBase64(device.credential);
		const lastResort =
			typeof body.lastResort === "string" ? body.lastResort : body.lastResort === true ? body.packages[0] : undefined;
		if (body.lastResort === true && body.packages.length !== 1) {
			throw new ApiError(400, "VALIDATION_FAILED", "With lastResort: true, send exactly one package.");
		}
		const oneTime = body.lastResort === true ? [] : body.packages;
		const all = [...oneTime, ...(lastResort ? [lastResort] : [])];
		if (all.length === 0) throw new ApiError(400, "VALIDATION_FAILED", "No packages given.");
		const checks = await Promise.all(all.map((p) => checkKeyPackage(p, credential)));
		const bad = checks.findIndex((check) => !check.ok);
		if (bad >= 0) {
			const check = checks[bad] as { ok: false; reason: string };
			const where = bad < oneTime.length ? `packages[${bad}]` : "lastResort";
			throw new ApiError(400, "VALIDATION_FAILED", `${where} ${check.reason}.`, { details: { index: bad } });
		}
		const rows = await Promise.all(
			oneTime.map(async (p) => ({
				id: newId("keyPackage"),
				userId: device.userId,
				deviceId: device.id,
				package: p,
				digest: await sha256Hex(p),
				lastResort: false,
			})),
		);
		const inserted = rows.length
			? await db.insert(keyPackages).values(rows).onConflictDoNothing().returning({ id: keyPackages.id })
			: [];
		if (lastResort) {
			await db.delete(keyPackages).where(and(eq(keyPackages.deviceId, device.id), eq(keyPackages.lastResort, true)));
			await db
				.insert(keyPackages)
				.values({
					id: newId("keyPackage"),
					userId: device.userId,
					deviceId: device.id,
					package: lastResort,
					digest: await sha256Hex(lastResort),
					lastResort: true,
				})
				.onConflictDoNothing();
		}
		return c.json({ stored: inserted.length + (lastResort ? 1 : 0), count: await availableCount(db, device.id) }, 201);
	})
	.openapi(countRoute, async (c) => {
		const db = c.var.db;
		const device = await ownDevice(db, c.var.auth.userId, c.req.valid("query").deviceId);
		const [lastResort] = await db
			.select({ id: keyPackages.id })
			.from(keyPackages)
			.where(and(eq(keyPackages.deviceId, device.id), eq(keyPackages.lastResort, true)));
		return c.json({ count: await availableCount(db, device.id), lastResort: Boolean(lastResort) }, 200);
	})
	.openapi(claim, async (c) => {
		const me = c.var.auth.userId;
		const db = c.var.db;
		const userIds = [...new Set(c.req.valid("json").userIds)];
		for (const userId of userIds) {
			const [exists] = await db.select({ id: users.id }).from(users).where(eq(users.id, userId));
			if (!exists) throw new ApiError(404, "NOT_FOUND", "No such user.");
			if (userId !== me && (await isBlockedEitherWay(db, me, userId))) {
				throw new ApiError(403, "BLOCKED", "A block stands between you and a listed user.");
			}
		}
		const packages: Claimed[] = [];
		for (const userId of userIds) {
			for (const device of await devicesOf(db, userId)) {
				const claimed = await claimForDevice(db, device.id, me);
				if (!claimed) continue;
				packages.push(claimed);
				const remaining = await availableCount(db, device.id);
				if (isLow(remaining)) {
					c.executionCtx.waitUntil(
						channelOf(c.env, userId)
							.notify(userId, { type: "keys_low", deviceId: device.id as DeviceId, count: remaining })
							.catch(() => {}),
					);
				}
			}
		}
		return c.json({ packages }, 200);
	});
