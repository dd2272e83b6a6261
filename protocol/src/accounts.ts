import { z } from "zod";
import { DeviceId, FriendRequestId, SessionId, UserId } from "./ids.ts";

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

export const Email = z.email().max(254);
export const Password = z
	.string()
	.min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
	.max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`);
export const Handle = z
	.string()
	.min(3)
	.max(32)
	.regex(/^[A-Za-z0-9_.]+$/, "may contain letters, digits, '_' and '.' only");
export const DisplayName = z.string().trim().min(1).max(64);
const Timestamp = z.iso.datetime();

export const User = z
	.object({
		id: UserId,
		email: Email,
		handle: Handle,
		displayName: DisplayName,
		emailVerified: z.boolean(),
		createdAt: Timestamp,
	})
	.meta({ id: "User" });
export type User = z.infer<typeof User>;

export const PublicUser = z.object({ id: UserId, handle: Handle, displayName: DisplayName }).meta({ id: "PublicUser" });
export type PublicUser = z.infer<typeof PublicUser>;

export const RegisterRequest = z
	.object({ email: Email, password: Password, handle: Handle, displayName: DisplayName })
	.meta({ id: "RegisterRequest" });
export const RegisterResponse = z.object({ user: User });

export const LoginRequest = z
	.object({
		email: Email,
		password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
		deviceName: z.string().trim().min(1).max(64).optional(),
	})
	.meta({ id: "LoginRequest" });
export const TokenPair = z.object({
	accessToken: z.string(),
	refreshToken: z.string(),
	/** Seconds until the access token expires. */
	expiresIn: z.number().int(),
});
export const LoginResponse = TokenPair.extend({ sessionId: SessionId, user: User }).meta({ id: "LoginResponse" });
export type LoginResponse = z.infer<typeof LoginResponse>;

export const RefreshRequest = z.object({ refreshToken: z.string().min(16).max(256) });
export const RefreshResponse = TokenPair.extend({ sessionId: SessionId }).meta({ id: "RefreshResponse" });

export const TokenRequest = z.object({ token: z.string().min(16).max(256) });
export const ForgotPasswordRequest = z.object({ email: Email });
export const ResetPasswordRequest = z.object({ token: z.string().min(16).max(256), password: Password });
export const ChangePasswordRequest = z.object({
	currentPassword: z.string().min(1).max(PASSWORD_MAX_LENGTH),
	password: Password,
});

export const Session = z
	.object({ id: SessionId, deviceName: z.string(), createdAt: Timestamp, lastSeenAt: Timestamp, current: z.boolean() })
	.meta({ id: "Session" });
export const SessionList = z.object({ sessions: z.array(Session) });

export const UpdateMeRequest = z
	.object({ displayName: DisplayName.optional(), handle: Handle.optional() })
	.refine((v) => v.displayName !== undefined || v.handle !== undefined, "nothing to update");

export const FriendRequest = z
	.object({ id: FriendRequestId, fromUserId: UserId, toUserId: UserId, user: PublicUser, createdAt: Timestamp })
	.meta({ id: "FriendRequest" });
export const Friend = PublicUser.extend({ since: Timestamp }).meta({ id: "Friend" });
export const FriendsList = z.object({
	friends: z.array(Friend),
	incoming: z.array(FriendRequest),
	outgoing: z.array(FriendRequest),
});
export const CreateFriendRequest = z.object({ userId: UserId });
export const CreateFriendRequestResponse = z.object({
	request: FriendRequest.extend({ status: z.enum(["pending", "accepted"]) }),
});

export const Block = z.object({ user: PublicUser, createdAt: Timestamp }).meta({ id: "Block" });
export const BlockList = z.object({ blocks: z.array(Block) });

/** base64 of a 32-byte Ed25519 public key. */
export const DeviceCredential = z
	.string()
	.regex(/^[A-Za-z0-9+/]{43}=$/, "must be base64 of the 32 raw bytes of an Ed25519 public key");
export const Device = z
	.object({ id: DeviceId, name: z.string(), credential: DeviceCredential, createdAt: Timestamp, lastSeenAt: Timestamp })
	.meta({ id: "Device" });
export const CreateDeviceRequest = z.object({ name: z.string().trim().min(1).max(64), credential: DeviceCredential });
export const DeviceList = z.object({ devices: z.array(Device) });
