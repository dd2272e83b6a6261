import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, type Json, signUp } from "./helpers.ts";
import { b64, createGroup, TestSocket } from "./sockets.ts";

type ErrorReply = { error: { code: string } };
type Conv = { id: string; type: string; title: string | null; members: Array<{ userId: string; role: string }> };

describe("conversations", () => {
	it("a direct conversation between two users is unique", async () => {
		const a = await signUp();
		const b = await signUp();
		const first = await call<{ conversation: Conv }>("/v1/conversations", {
			token: a.accessToken,
			body: { type: "direct", memberIds: [b.id] },
		});
		expect(first.status).toBe(201);
		expect(first.body.conversation.members.map((m) => m.userId).sort()).toEqual([a.id, b.id].sort());
		const again = await call<{ conversation: Conv }>("/v1/conversations", {
			token: b.accessToken,
			body: { type: "direct", memberIds: [a.id] },
		});
		expect(again.status).toBe(200);
		expect(again.body.conversation.id).toBe(first.body.conversation.id);
	});

	it("a block refuses a new direct conversation and freezes an existing one", async () => {
		const a = await signUp();
		const b = await signUp();
		const conv = await call<{ conversation: Conv }>("/v1/conversations", {
			token: a.accessToken,
			body: { type: "direct", memberIds: [b.id] },
		});
		await call(`/v1/blocks/${a.id}`, { method: "PUT", token: b.accessToken });
		const send = await call<ErrorReply>(`/v1/conversations/${conv.body.conversation.id}/messages`, {
			token: a.accessToken,
			body: { clientId: "c1", ciphertext: b64("hi") },
		});
		expect(send.status).toBe(403);
		const c = await signUp();
		await call(`/v1/blocks/${c.id}`, { method: "PUT", token: a.accessToken });
		const refused = await call<ErrorReply>("/v1/conversations", {
			token: c.accessToken,
			body: { type: "direct", memberIds: [a.id] },
		});
		expect(refused.status).toBe(403);
		expect(refused.body.error.code).toBe("BLOCKED");
		const group = await call<ErrorReply>("/v1/conversations", {
			token: c.accessToken,
			body: { type: "group", memberIds: [a.id] },
		});
		expect(group.status).toBe(403);
		await call(`/v1/blocks/${a.id}`, { method: "DELETE", token: b.accessToken });
		const thawed = await call(`/v1/conversations/${conv.body.conversation.id}/messages`, {
			token: a.accessToken,
			body: { clientId: "c2", ciphertext: b64("hi again") },
		});
		expect(thawed.status).toBe(201);
	});

	it("groups: roles, title changes by admins only, add and remove, 404 for outsiders", async () => {
		const owner = await signUp();
		const m1 = await signUp();
		const m2 = await signUp();
		const outsider = await signUp();
		const id = await createGroup(owner.accessToken, [m1.id], "Team");
		const got = await call<{ conversation: Conv }>(`/v1/conversations/${id}`, { token: m1.accessToken });
		expect(got.body.conversation.members).toEqual(
			expect.arrayContaining([
				{ userId: owner.id, role: "owner" },
				{ userId: m1.id, role: "member" },
			]),
		);
		expect((await call(`/v1/conversations/${id}`, { token: outsider.accessToken })).status).toBe(404);
		expect(
			(await call(`/v1/conversations/${id}`, { method: "PATCH", token: m1.accessToken, body: { title: "X" } })).status,
		).toBe(403);
		const renamed = await call<{ conversation: Conv }>(`/v1/conversations/${id}`, {
			method: "PATCH",
			token: owner.accessToken,
			body: { title: "Renamed" },
		});
		expect(renamed.body.conversation.title).toBe("Renamed");
		expect(
			(await call(`/v1/conversations/${id}/members`, { token: m1.accessToken, body: { userId: m2.id } })).status,
		).toBe(403);
		const added = await call<{ conversation: Conv }>(`/v1/conversations/${id}/members`, {
			token: owner.accessToken,
			body: { userId: m2.id },
		});
		expect(added.status).toBe(201);
		expect(added.body.conversation.members).toHaveLength(3);
		expect(
			(await call(`/v1/conversations/${id}/members/${m2.id}`, { method: "DELETE", token: m1.accessToken })).status,
		).toBe(403);
		expect(
			(await call(`/v1/conversations/${id}/members/${m1.id}`, { method: "DELETE", token: m1.accessToken })).status,
		).toBe(204);
		expect((await call(`/v1/conversations/${id}`, { token: m1.accessToken })).status).toBe(404);
		expect((await call(`/v1/conversations/${id}/messages`, { token: m1.accessToken })).status).toBe(404);
	});

	it("an owner who leaves hands the group to the longest-standing member", async () => {
		const owner = await signUp();
		const first = await signUp();
		const later = await signUp();
		const id = await createGroup(owner.accessToken, [first.id]);
		await call(`/v1/conversations/${id}/members`, { token: owner.accessToken, body: { userId: later.id } });
		expect(
			(await call(`/v1/conversations/${id}/members/${owner.id}`, { method: "DELETE", token: owner.accessToken }))
				.status,
		).toBe(204);
		const got = await call<{ conversation: Conv }>(`/v1/conversations/${id}`, { token: later.accessToken });
		expect(got.body.conversation.members).toEqual(
			expect.arrayContaining([
				{ userId: first.id, role: "owner" },
				{ userId: later.id, role: "member" },
			]),
		);
		expect(got.body.conversation.members).toHaveLength(2);
	});

	it("deleting an owner's account hands each group to its longest-standing admin; the room learns it", async () => {
		const owner = await signUp();
		const member = await signUp();
		const admin = await signUp();
		const id = await createGroup(owner.accessToken, [member.id]);
		const added = await call(`/v1/conversations/${id}/members`, {
			token: owner.accessToken,
			body: { userId: admin.id, role: "admin" },
		});
		expect(added.status).toBe(201);
		const channel = await TestSocket.open("/v1/ws", member.accessToken);
		await channel.next("ready");

		expect((await call("/v1/users/me", { method: "DELETE", token: owner.accessToken })).status).toBe(204);
		const expected = [
			{ userId: admin.id, role: "owner" },
			{ userId: member.id, role: "member" },
		];
		const got = await call<{ conversation: Conv }>(`/v1/conversations/${id}`, { token: member.accessToken });
		expect(got.body.conversation.members).toHaveLength(2);
		expect(got.body.conversation.members).toEqual(expect.arrayContaining(expected));
		const room = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(id));
		const inRoom = await runInDurableObject(room, (_i, state) =>
			state.storage.sql.exec<{ userId: string; role: string }>("SELECT user_id AS userId, role FROM members").toArray(),
		);
		expect(inRoom).toHaveLength(2);
		expect(inRoom).toEqual(expect.arrayContaining(expected));
		expect(await channel.next("membership", (f) => f.change === "removed")).toMatchObject({ userId: owner.id });
		expect(await channel.next("membership", (f) => f.change === "role_changed")).toMatchObject({
			conversationId: id,
			userId: admin.id,
			role: "owner",
		});
		channel.close();
	});

	it("lists the caller's conversations with lastSeq and unread", async () => {
		const a = await signUp();
		const b = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		for (const n of [1, 2, 3]) {
			await call(`/v1/conversations/${id}/messages`, {
				token: a.accessToken,
				body: { clientId: `m${n}`, ciphertext: b64(`msg ${n}`) },
			});
		}
		const listB = await call<{ conversations: Array<Json & { lastSeq: number; unread: number }> }>(
			"/v1/conversations",
			{
				token: b.accessToken,
			},
		);
		const entry = listB.body.conversations.find((c) => c.id === id);
		expect(entry).toMatchObject({ lastSeq: 3, unread: 3 });
		expect((await call(`/v1/conversations/${id}/read`, { token: b.accessToken, body: { seq: 2 } })).status).toBe(204);
		const after = await call<{ conversations: Array<Json & { unread: number }> }>("/v1/conversations", {
			token: b.accessToken,
		});
		expect(after.body.conversations.find((c) => c.id === id)?.unread).toBe(1);
		const listA = await call<{ conversations: Array<Json & { unread: number }> }>("/v1/conversations", {
			token: a.accessToken,
		});
		expect(listA.body.conversations.find((c) => c.id === id)?.unread).toBe(0);
	});
});

describe("messages over REST", () => {
	it("stores, deduplicates by clientId and pages history by seq", async () => {
		const a = await signUp();
		const b = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		const first = await call<{ message: Json }>(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "same", ciphertext: b64("one") },
		});
		expect(first.status).toBe(201);
		expect(first.body.message).toMatchObject({ seq: 1, senderId: a.id, clientId: "same", ciphertext: b64("one") });
		const dup = await call<{ message: Json }>(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "same", ciphertext: b64("one") },
		});
		expect(dup.body.message.seq).toBe(1);
		expect(dup.body.message.id).toBe(first.body.message.id);
		for (let i = 2; i <= 5; i++) {
			await call(`/v1/conversations/${id}/messages`, {
				token: b.accessToken,
				body: { clientId: `b${i}`, ciphertext: b64(`m${i}`) },
			});
		}
		const page = await call<{ messages: Array<{ seq: number }>; hasMore: boolean }>(
			`/v1/conversations/${id}/messages?after=1&limit=2`,
			{
				token: a.accessToken,
			},
		);
		expect(page.body.messages.map((m) => m.seq)).toEqual([2, 3]);
		expect(page.body.hasMore).toBe(true);
		const rest = await call<{ messages: Array<{ seq: number }>; hasMore: boolean }>(
			`/v1/conversations/${id}/messages?after=3`,
			{
				token: a.accessToken,
			},
		);
		expect(rest.body.messages.map((m) => m.seq)).toEqual([4, 5]);
		expect(rest.body.hasMore).toBe(false);
	});

	it("refuses oversized ciphertext with 413 and non-base64 with 400, storing nothing", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const big = await call<ErrorReply>(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "big", ciphertext: "A".repeat(Math.ceil((64 * 1024 * 4) / 3) + 8) },
		});
		expect(big.status).toBe(413);
		expect(big.body.error.code).toBe("TOO_LARGE");
		const bad = await call<ErrorReply>(`/v1/conversations/${id}/messages`, {
			token: a.accessToken,
			body: { clientId: "bad", ciphertext: "not base64!" },
		});
		expect(bad.status).toBe(400);
		const history = await call<{ messages: unknown[] }>(`/v1/conversations/${id}/messages`, { token: a.accessToken });
		expect(history.body.messages).toEqual([]);
	});
});
