import { SingleServerFrame } from "@secureconnect/protocol";
import { describe, expect, it } from "vitest";
import { call, type Json, login, register, signUp } from "./helpers.ts";
import { TestSocket } from "./sockets.ts";

type ErrorReply = { error: { code: string } };
type FriendsReply = {
	friends: Array<{ id: string }>;
	incoming: Array<{ id: string; fromUserId: string }>;
	outgoing: Array<{ id: string; toUserId: string }>;
};

describe("users", () => {
	it("reads, updates and deletes the own profile", async () => {
		const s = await signUp();
		const me = await call<{ user: Json }>("/v1/users/me", { token: s.accessToken });
		expect(me.body.user).toMatchObject({ id: s.id, email: s.email, handle: s.handle });
		const patched = await call<{ user: Json }>("/v1/users/me", {
			method: "PATCH",
			token: s.accessToken,
			body: { displayName: "Renamed" },
		});
		expect(patched.status).toBe(200);
		expect(patched.body.user.displayName).toBe("Renamed");
		const empty = await call<ErrorReply>("/v1/users/me", { method: "PATCH", token: s.accessToken, body: {} });
		expect(empty.status).toBe(400);

		expect((await call("/v1/users/me", { method: "DELETE", token: s.accessToken })).status).toBe(204);
		expect((await call("/v1/users/me", { token: s.accessToken })).status).toBe(401);
		const relogin = await call("/v1/auth/login", { body: { email: s.email, password: s.password } });
		expect(relogin.status).toBe(401);
		// The handle and email are free again: the data is gone, not hidden.
		const again = await call("/v1/auth/register", {
			body: { email: s.email, password: s.password, handle: s.handle, displayName: "Back" },
		});
		expect(again.status).toBe(201);
	});

	it("refuses a handle another user has, with 409 HANDLE_TAKEN", async () => {
		const a = await signUp();
		const b = await register();
		const res = await call<ErrorReply>("/v1/users/me", {
			method: "PATCH",
			token: a.accessToken,
			body: { handle: b.handle },
		});
		expect(res.status).toBe(409);
		expect(res.body.error.code).toBe("HANDLE_TAKEN");
	});

	it("shows public profiles and finds users by exact handle", async () => {
		const a = await signUp();
		const b = await register();
		const profile = await call<Json>(`/v1/users/${b.id}`, { token: a.accessToken });
		expect(profile.status).toBe(200);
		// API.md's `{id, handle, displayName}`, and the same under `user` for earlier clients.
		const fields = { id: b.id, handle: b.handle, displayName: expect.any(String) };
		expect(profile.body).toEqual({ ...fields, user: fields });
		const found = await call<{ users: Json[] }>(`/v1/users?handle=${b.handle.toUpperCase()}`, { token: a.accessToken });
		expect(found.body.users.map((u) => u.id)).toEqual([b.id]);
		const none = await call<{ users: Json[] }>("/v1/users?handle=nobody_here_x", { token: a.accessToken });
		expect(none.body.users).toEqual([]);
		expect((await call("/v1/users/usr_doesnotexist000000", { token: a.accessToken })).status).toBe(404);
	});

	it("requires a token", async () => {
		const res = await call<ErrorReply>("/v1/users/me");
		expect(res.status).toBe(401);
		expect(res.body.error.code).toBe("UNAUTHORIZED");
	});
});

describe("friends", () => {
	it("request, accept, list, unfriend", async () => {
		const a = await signUp();
		const b = await signUp();
		const req = await call<{ request: { id: string; status: string } }>("/v1/friends/requests", {
			token: a.accessToken,
			body: { userId: b.id },
		});
		expect(req.status).toBe(201);
		expect(req.body.request.status).toBe("pending");
		const dup = await call<ErrorReply>("/v1/friends/requests", { token: a.accessToken, body: { userId: b.id } });
		expect(dup.status).toBe(409);

		const bList = await call<FriendsReply>("/v1/friends", { token: b.accessToken });
		expect(bList.body.incoming.map((r) => r.fromUserId)).toEqual([a.id]);
		const aList = await call<FriendsReply>("/v1/friends", { token: a.accessToken });
		expect(aList.body.outgoing.map((r) => r.toUserId)).toEqual([b.id]);

		// Only the recipient can accept.
		expect(
			(await call(`/v1/friends/requests/${req.body.request.id}/accept`, { method: "POST", token: a.accessToken }))
				.status,
		).toBe(404);
		expect(
			(await call(`/v1/friends/requests/${req.body.request.id}/accept`, { method: "POST", token: b.accessToken }))
				.status,
		).toBe(204);
		const friends = await call<FriendsReply>("/v1/friends", { token: a.accessToken });
		expect(friends.body.friends.map((f) => f.id)).toEqual([b.id]);
		expect(friends.body.outgoing).toEqual([]);

		expect((await call(`/v1/friends/${a.id}`, { method: "DELETE", token: b.accessToken })).status).toBe(204);
		expect((await call<FriendsReply>("/v1/friends", { token: a.accessToken })).body.friends).toEqual([]);
		expect((await call(`/v1/friends/${a.id}`, { method: "DELETE", token: b.accessToken })).status).toBe(404);
	});

	it("decline removes the request; crossing requests make friends at once", async () => {
		const a = await signUp();
		const b = await signUp();
		const req = await call<{ request: { id: string } }>("/v1/friends/requests", {
			token: a.accessToken,
			body: { userId: b.id },
		});
		expect(
			(await call(`/v1/friends/requests/${req.body.request.id}/decline`, { method: "POST", token: b.accessToken }))
				.status,
		).toBe(204);
		expect((await call<FriendsReply>("/v1/friends", { token: b.accessToken })).body.incoming).toEqual([]);

		await call("/v1/friends/requests", { token: a.accessToken, body: { userId: b.id } });
		const crossing = await call<{ request: { status: string } }>("/v1/friends/requests", {
			token: b.accessToken,
			body: { userId: a.id },
		});
		expect(crossing.body.request.status).toBe("accepted");
		expect((await call<FriendsReply>("/v1/friends", { token: a.accessToken })).body.friends.map((f) => f.id)).toEqual([
			b.id,
		]);
	});

	it("every change reaches both users' channels with the other side's public profile", async () => {
		const x = await signUp();
		const a = await signUp();
		const aOtherDevice = await login(a, "second device");
		const [xCh, aCh, aCh2] = await Promise.all([
			TestSocket.open("/v1/ws", x.accessToken),
			TestSocket.open("/v1/ws", a.accessToken),
			TestSocket.open("/v1/ws", aOtherDevice.accessToken),
		]);
		await Promise.all([xCh.next("ready"), aCh.next("ready"), aCh2.next("ready")]);
		const profile = (u: { id: string; handle: string }) => ({
			id: u.id,
			handle: u.handle,
			displayName: expect.any(String),
		});
		const friend = (ch: TestSocket, change: string) => ch.next("friend", (f) => f.change === change);
		const request = async () => {
			const res = await call<{ request: { id: string } }>("/v1/friends/requests", {
				token: x.accessToken,
				body: { userId: a.id },
			});
			expect(res.status).toBe(201);
			return res.body.request.id;
		};

		const first = await request();
		const received = await friend(aCh, "request");
		expect(received).toEqual({
			type: "friend",
			change: "request",
			userId: x.id,
			user: profile(x),
			by: x.id,
			requestId: first,
			at: expect.any(String),
		});
		expect(SingleServerFrame.safeParse(received).success).toBe(true);
		// The sender's own devices see the outgoing request too.
		expect(await friend(xCh, "request")).toMatchObject({ userId: a.id, user: profile(a), by: x.id, requestId: first });

		expect((await call(`/v1/friends/requests/${first}/accept`, { method: "POST", token: a.accessToken })).status).toBe(
			204,
		);
		expect(await friend(xCh, "accepted")).toMatchObject({ userId: a.id, user: profile(a), by: a.id, requestId: first });
		expect(await friend(aCh2, "accepted")).toMatchObject({
			userId: x.id,
			user: profile(x),
			by: a.id,
			requestId: first,
		});

		expect((await call(`/v1/friends/${a.id}`, { method: "DELETE", token: x.accessToken })).status).toBe(204);
		expect(await friend(aCh, "removed")).toMatchObject({ userId: x.id, user: profile(x), by: x.id });

		const second = await request();
		expect(
			(await call(`/v1/friends/requests/${second}/decline`, { method: "POST", token: a.accessToken })).status,
		).toBe(204);
		expect(await friend(xCh, "declined")).toMatchObject({ userId: a.id, by: a.id, requestId: second });

		const third = await request();
		expect((await call(`/v1/friends/requests/${third}/decline`, { method: "POST", token: x.accessToken })).status).toBe(
			204,
		);
		expect(await friend(aCh, "cancelled")).toMatchObject({ userId: x.id, by: x.id, requestId: third });

		// Crossing requests: the second one befriends at once, and the first asker hears so.
		const fourth = await request();
		const crossing = await call("/v1/friends/requests", { token: a.accessToken, body: { userId: x.id } });
		expect(crossing.status).toBe(201);
		expect(await xCh.next("friend", (f) => f.change === "accepted" && f.requestId === fourth)).toMatchObject({
			userId: a.id,
			by: a.id,
		});
		for (const ch of [xCh, aCh, aCh2]) {
			for (const f of ch.frames) expect(SingleServerFrame.safeParse(f).success, JSON.stringify(f)).toBe(true);
			ch.close();
		}
	});

	it("refuses requests to yourself or to nobody", async () => {
		const a = await signUp();
		expect((await call("/v1/friends/requests", { token: a.accessToken, body: { userId: a.id } })).status).toBe(400);
		expect(
			(await call("/v1/friends/requests", { token: a.accessToken, body: { userId: "usr_aaaaaaaaaaaaaaaaaaaa" } }))
				.status,
		).toBe(404);
	});
});

describe("blocks", () => {
	it("a block stops friend requests both ways, ends a friendship and hides profiles", async () => {
		const a = await signUp();
		const b = await signUp();
		await call("/v1/friends/requests", { token: a.accessToken, body: { userId: b.id } });
		await call("/v1/friends/requests", { token: b.accessToken, body: { userId: a.id } });
		expect((await call<FriendsReply>("/v1/friends", { token: a.accessToken })).body.friends).toHaveLength(1);

		expect((await call(`/v1/blocks/${b.id}`, { method: "PUT", token: a.accessToken })).status).toBe(204);
		expect((await call(`/v1/blocks/${b.id}`, { method: "PUT", token: a.accessToken })).status).toBe(204);
		expect((await call<FriendsReply>("/v1/friends", { token: a.accessToken })).body.friends).toEqual([]);

		const fromBlocked = await call<ErrorReply>("/v1/friends/requests", {
			token: b.accessToken,
			body: { userId: a.id },
		});
		expect(fromBlocked.status).toBe(403);
		expect(fromBlocked.body.error.code).toBe("BLOCKED");
		const fromBlocker = await call<ErrorReply>("/v1/friends/requests", {
			token: a.accessToken,
			body: { userId: b.id },
		});
		expect(fromBlocker.status).toBe(403);

		expect((await call(`/v1/users/${a.id}`, { token: b.accessToken })).status).toBe(404);
		const lookup = await call<{ users: Json[] }>(`/v1/users?handle=${a.handle}`, { token: b.accessToken });
		expect(lookup.body.users).toEqual([]);

		const blocks = await call<{ blocks: Array<{ user: { id: string } }> }>("/v1/blocks", { token: a.accessToken });
		expect(blocks.body.blocks.map((x) => x.user.id)).toEqual([b.id]);

		expect((await call(`/v1/blocks/${b.id}`, { method: "DELETE", token: a.accessToken })).status).toBe(204);
		expect((await call(`/v1/blocks/${b.id}`, { method: "DELETE", token: a.accessToken })).status).toBe(404);
		expect((await call("/v1/friends/requests", { token: b.accessToken, body: { userId: a.id } })).status).toBe(201);
	});

	it("a pending request from the blocked user cannot be accepted after the block", async () => {
		const a = await signUp();
		const b = await signUp();
		const req = await call<{ request: { id: string } }>("/v1/friends/requests", {
			token: b.accessToken,
			body: { userId: a.id },
		});
		await call(`/v1/blocks/${b.id}`, { method: "PUT", token: a.accessToken });
		expect(
			(await call(`/v1/friends/requests/${req.body.request.id}/accept`, { method: "POST", token: a.accessToken }))
				.status,
		).toBe(404);
	});

	it("refuses blocking yourself or a missing user", async () => {
		const a = await signUp();
		expect((await call(`/v1/blocks/${a.id}`, { method: "PUT", token: a.accessToken })).status).toBe(400);
		expect((await call("/v1/blocks/usr_aaaaaaaaaaaaaaaaaaab", { method: "PUT", token: a.accessToken })).status).toBe(
			404,
		);
	});
});

describe("devices", () => {
	async function credential(): Promise<string> {
		const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
		const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
		return btoa(String.fromCharCode(...raw));
	}

	it("registers a device bound to the user, lists and removes it", async () => {
		const user = await register();
		const s = await login(user);
		const cred = await credential();
		const created = await call<{ device: Json }>("/v1/devices", {
			token: s.accessToken,
			body: { name: "Phone", credential: cred },
		});
		expect(created.status).toBe(201);
		expect(created.body.device).toMatchObject({ name: "Phone", credential: cred });
		const id = created.body.device.id as string;
		const listed = await call<{ devices: Json[] }>("/v1/devices", { token: s.accessToken });
		expect(listed.body.devices.map((d) => d.id)).toEqual([id]);

		const other = await signUp();
		expect((await call(`/v1/devices/${id}`, { method: "DELETE", token: other.accessToken })).status).toBe(404);
		const stolen = await call<ErrorReply>("/v1/devices", {
			token: other.accessToken,
			body: { name: "Mine", credential: cred },
		});
		expect(stolen.status).toBe(409);

		const laptop = await login(user, "laptop");
		expect((await call(`/v1/devices/${id}`, { method: "DELETE", token: laptop.accessToken })).status).toBe(204);
		expect((await call<{ devices: Json[] }>("/v1/devices", { token: laptop.accessToken })).body.devices).toEqual([]);
		// The removed device's session ended with it.
		expect((await call("/v1/devices", { token: s.accessToken })).status).toBe(401);
	});

	it("refuses a credential that is not an Ed25519 public key", async () => {
		const s = await signUp();
		const short = await call<ErrorReply>("/v1/devices", {
			token: s.accessToken,
			body: { name: "X", credential: "AAAA" },
		});
		expect(short.status).toBe(400);
		const notAPoint = btoa(String.fromCharCode(...new Uint8Array(32).fill(255)));
		const bad = await call<ErrorReply>("/v1/devices", {
			token: s.accessToken,
			body: { name: "X", credential: notAPoint },
		});
		expect(bad.status).toBe(400);
		expect((await call<{ devices: Json[] }>("/v1/devices", { token: s.accessToken })).body.devices).toEqual([]);
	});
});
