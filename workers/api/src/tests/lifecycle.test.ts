import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { conversationMembers } from "../db/schema/index.ts";
import { call, login, register, signUp, withDb } from "./helpers.ts";
import { b64, createGroup, TestSocket } from "./sockets.ts";

const room = (id: string) => env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(id));

describe("socket lifecycle", () => {
	it("sockets survive the object being evicted from memory (hibernation)", async () => {
		const a = await signUp();
		const b = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		const wa = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		const wb = await TestSocket.open(`/v1/conversations/${id}/ws`, b.accessToken);
		await wa.next("ready");
		await wb.next("ready");
		wa.send({ type: "send", clientId: "before", ciphertext: b64("before") });
		await wb.next("message", (f) => f.message.seq === 1);
		await evictDurableObject(room(id));
		wa.send({ type: "send", clientId: "after", ciphertext: b64("after") });
		expect(await wb.next("message", (f) => f.message.seq === 2)).toMatchObject({ message: { clientId: "after" } });
		expect(wa.closed).toBeUndefined();
		// Presence is derived from the sockets themselves, so it too survives.
		const seen = wa.frames.length;
		wb.close();
		expect(await wa.next("presence", (f) => f.userId === b.id && f.state === "offline", 5_000, seen)).toBeTruthy();
	});

	it("closes a socket that stays silent past the idle timeout", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		await ws.next("ready");
		await runInDurableObject(room(id), (_instance, state) => {
			for (const socket of state.getWebSockets()) {
				const info = socket.deserializeAttachment() as { lastActive: number };
				socket.serializeAttachment({ ...info, lastActive: Date.now() - 10 * 60_000 });
			}
		});
		// The object keeps attachments it has read in memory: wake it afresh so it reads the aged ones.
		await evictDurableObject(room(id));
		expect(await runDurableObjectAlarm(room(id))).toBe(true);
		expect((await ws.waitClosed()).code).toBe(4008);
	});

	it("ends sockets of a logged-out session: the user channel at once, rooms at their next check", async () => {
		const user = await register();
		const s = await login(user);
		const id = await createGroup(s.accessToken, [(await signUp()).id]);
		const channel = await TestSocket.open("/v1/ws", s.accessToken);
		await channel.next("ready");
		const conv = await TestSocket.open(`/v1/conversations/${id}/ws`, s.accessToken);
		await conv.next("ready");
		expect((await call("/v1/auth/logout", { method: "POST", token: s.accessToken })).status).toBe(204);
		expect((await channel.waitClosed()).code).toBe(4001);
		await runDurableObjectAlarm(room(id));
		expect((await conv.waitClosed()).code).toBe(4001);
	});

	it("repairs a member list the room missed from Postgres at its next check: the removed member's sockets close", async () => {
		const a = await signUp();
		const b = await signUp();
		const c = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		const wb = await TestSocket.open(`/v1/conversations/${id}/ws`, b.accessToken);
		await wb.next("ready");
		// Postgres changes behind the room's back, as when the api's call to the room fails after the commit.
		await withDb(async (db) => {
			await db
				.delete(conversationMembers)
				.where(and(eq(conversationMembers.conversationId, id), eq(conversationMembers.userId, b.id)));
			await db.insert(conversationMembers).values({ conversationId: id, userId: c.id, role: "member" });
		});
		expect((await TestSocket.refusal(`/v1/conversations/${id}/ws`, c.accessToken)).status).toBe(403);
		expect(wb.closed).toBeUndefined();
		expect(await runDurableObjectAlarm(room(id))).toBe(true);
		expect(await wb.waitClosed()).toEqual({ code: 4003, reason: "removed" });
		const wc = await TestSocket.open(`/v1/conversations/${id}/ws`, c.accessToken);
		expect(await wc.next("ready")).toMatchObject({ userId: c.id });
	});

	it("wipes disappearing messages once their retention has passed, keeping tombstones", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const patched = await call(`/v1/conversations/${id}`, {
			method: "PATCH",
			token: a.accessToken,
			body: { retentionSeconds: 60 },
		});
		expect(patched.status).toBe(200);
		await call(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "old", ciphertext: b64("old") },
		});
		await call(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "new", ciphertext: b64("new") },
		});
		await runInDurableObject(room(id), (_instance, state) => {
			state.storage.sql.exec("UPDATE messages SET sent_at = ? WHERE client_id = 'old'", Date.now() - 120_000);
		});
		await runDurableObjectAlarm(room(id));
		const history = await call<{ messages: Array<{ clientId: string; deleted: boolean; ciphertext: string }> }>(
			`/v1/conversations/${id}/messages`,
			{ token: a.accessToken },
		);
		expect(history.body.messages.map((m) => [m.clientId, m.deleted, m.ciphertext])).toEqual([
			["old", true, ""],
			["new", false, b64("new")],
		]);
	});
});
