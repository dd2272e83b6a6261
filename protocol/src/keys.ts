import { z } from "zod";
import { DeviceId, UserId } from "./ids.ts";

/** The largest KeyPackage accepted (bytes, before base64). */
export const MAX_KEY_PACKAGE_BYTES = 4 * 1024;
export const MAX_PACKAGES_PER_UPLOAD = 100;
/** Below this many one-time packages a device is told to top up. */
export const KEY_PACKAGE_LOW_WATER = 10;

export const KeyPackageB64 = z
	.string()
	.min(16)
	.max(Math.ceil((MAX_KEY_PACKAGE_BYTES * 4) / 3) + 4)
	.regex(/^[A-Za-z0-9+/]+={0,2}$/, "must be base64");

export const UploadKeyPackagesRequest = z
	.object({
		deviceId: DeviceId,
		packages: z.array(KeyPackageB64).max(MAX_PACKAGES_PER_UPLOAD),
		/** The device's last-resort package (replaces the previous one), or true when `packages` holds exactly it. */
		lastResort: z.union([KeyPackageB64, z.boolean()]).optional(),
	})
	.meta({ id: "UploadKeyPackagesRequest" });

export const UploadKeyPackagesResponse = z.object({ stored: z.number().int(), count: z.number().int() });

export const KeyPackageCount = z.object({ count: z.number().int(), lastResort: z.boolean() });

export const ClaimKeyPackagesRequest = z.object({ userIds: z.array(UserId).min(1).max(100) });

export const ClaimedKeyPackage = z
	.object({ userId: UserId, deviceId: DeviceId, package: z.string(), lastResort: z.boolean() })
	.meta({ id: "ClaimedKeyPackage" });
export type ClaimedKeyPackage = z.infer<typeof ClaimedKeyPackage>;
export const ClaimKeyPackagesResponse = z.object({ packages: z.array(ClaimedKeyPackage) });

/** A Welcome to route with a commit: the MLSMessage bytes and the devices it is for. */
export const WelcomeEnvelope = z.object({
	message: KeyPackageB64.max(1024 * 1024),
	deviceIds: z.array(DeviceId).min(1).max(1000),
});
export type WelcomeEnvelope = z.infer<typeof WelcomeEnvelope>;

export const PendingWelcome = z
	.object({
		id: z.string(),
		conversationId: z.string(),
		senderId: UserId,
		message: z.string(),
		epoch: z.number().int(),
		createdAt: z.iso.datetime(),
	})
	.meta({ id: "PendingWelcome" });
export type PendingWelcome = z.infer<typeof PendingWelcome>;
