import { z } from "zod";

/** Opaque ids: a short type prefix and random base32, e.g. `usr_k3j…`. */
const id = <B extends string>(_brand: B) =>
	z
		.string()
		.min(4)
		.max(64)
		.regex(/^[a-z]{2,5}_[a-z2-7]{10,40}$/)
		.brand<B>();

export const UserId = id("UserId");
export type UserId = z.infer<typeof UserId>;
export const SessionId = id("SessionId");
export type SessionId = z.infer<typeof SessionId>;
export const DeviceId = id("DeviceId");
export type DeviceId = z.infer<typeof DeviceId>;
export const FriendRequestId = id("FriendRequestId");
export type FriendRequestId = z.infer<typeof FriendRequestId>;

export const ID_PREFIXES = {
	user: "usr",
	session: "ses",
	device: "dev",
	friendRequest: "frq",
	email: "eml",
	conversation: "cnv",
	message: "msg",
	file: "fil",
	keyPackage: "kpk",
	welcome: "wel",
	call: "cal",
	pushSubscription: "psb",
} as const;
