// Friend events on both users' channels, each carrying the other side's
// public profile so a client can update its friends list without refetching.
import type { FriendFrame, FriendRequestId } from "@secureconnect/protocol";
import { notifyUsers } from "../conversations/service.ts";
import type { Env } from "../env.ts";
import { toPublicUser, type UserRow } from "./users.ts";

type Party = Pick<UserRow, "id" | "handle" | "displayName">;

export async function announceFriendChange(
	env: Env,
	change: FriendFrame["change"],
	actor: Party,
	other: Party,
	requestId?: string,
	at: Date = new Date(),
): Promise<void> {
	const frameFor = (about: Party): FriendFrame => ({
		type: "friend",
		change,
		userId: toPublicUser(about).id,
		user: toPublicUser(about),
		by: toPublicUser(actor).id,
		...(requestId !== undefined && { requestId: requestId as FriendRequestId }),
		at: at.toISOString(),
	});
	await Promise.all([notifyUsers(env, [other.id], frameFor(actor)), notifyUsers(env, [actor.id], frameFor(other))]);
}
