import { abortAllDurableObjects } from "cloudflare:test";
import { APP_SUBPROTOCOL, BATCH_SUBPROTOCOL, MAX_BATCH_FRAMES } from "@secureconnect/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { call, login, signUp } from "./helpers.ts";
import { b64, createGroup, TestSocket } from "./sockets.ts";

describe("conversation sockets", () => {
	it("authenticate with the bearer subprotocol and select the app protocol when offered", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken, [
			"secureconnect.v1",
			`bearer.${a.accessToken}`,
		]);
		const ready = await ws.next("ready");
		expect(ready).toMatchObject({ userId: a.id, lastSeq: 0 });
		ws.close();
	});

	it("authenticate with a first auth frame", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`);
		ws.send({ type: "auth", token: a.accessToken });
		expect(await ws.next("ready")).toMatchObject({ userId: a.id });
		ws.send({ type: "send", clientId: "x1", ciphertext: b64("hello") });
		expect(await ws.next("ack")).toMatchObject({ clientId: "x1", seq: 1 });
		ws.close();
	});

	it("refuse tokenless sockets, bad tokens and non-members", async () => {
		const a = await signUp();
		const outsider = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const tokenless = await TestSocket.open(`/v1/conversations/${id}/ws`);
		tokenless.send({ type: "send", clientId: "x", ciphertext: b64("x") });
		expect(await tokenless.next("error")).toMatchObject({ code: "UNAUTHORIZED" });
		expect((await tokenless.waitClosed()).code).toBe(4001);

		const badToken = await TestSocket.open(`/v1/conversations/${id}/ws`);
		badToken.send({ type: "auth", token: "not-a-real-token-at-all" });
		expect((await badToken.waitClosed()).code).toBe(4001);

		expect((await TestSocket.refusal(`/v1/conversations/${id}/ws`, outsider.accessToken)).status).toBe(404);
		const outsiderFrame = await TestSocket.open(`/v1/conversations/${id}/ws`);
		outsiderFrame.send({ type: "auth", token: outsider.accessToken });
		expect((await outsiderFrame.waitClosed()).code).toBe(4003);
		expect((await TestSocket.refusal(`/v1/conversations/${id}/ws`, "garbage")).status).toBe(401);
	});

	it("close at once when their session ends (logout, refresh token reuse), and only that session's", async () => {
		const a = await signUp();
		const other = await login(a, "second device");
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const open = async (token: string) => {
			const byProtocol = await TestSocket.open(`/v1/conversations/${id}/ws`, token);
			await byProtocol.next("ready");
			const byFrame = await TestSocket.open(`/v1/conversations/${id}/ws`);
			byFrame.send({ type: "auth", token });
			await byFrame.next("ready");
			const channel = await TestSocket.open("/v1/ws", token);
			await channel.next("ready");
			return [byProtocol, byFrame, channel];
		};
		const mine = await open(a.accessToken);
		const theirs = await open(other.accessToken);
		expect((await call("/v1/auth/logout", { method: "POST", token: a.accessToken })).status).toBe(204);
		for (const socket of mine) {
			// An error frame says why before the close, which a client may see seconds later.
			expect(await socket.next("error", (f) => f.code === "UNAUTHORIZED")).toMatchObject({
				message: expect.stringMatching(/session has ended/),
			});
			expect(await socket.waitClosed(2_000)).toMatchObject({ code: 4001 });
		}
		const survivor = theirs[0] as TestSocket;
		survivor.send({ type: "send", clientId: "still-here", ciphertext: b64("x") });
		expect(await survivor.next("ack")).toMatchObject({ clientId: "still-here" });

		// A reused refresh token revokes its session: its sockets end with it.
		const rotated = await call("/v1/auth/refresh", { body: { refreshToken: other.refreshToken } });
		expect(rotated.status).toBe(200);
		expect((await call("/v1/auth/refresh", { body: { refreshToken: other.refreshToken } })).status).toBe(401);
		for (const socket of theirs) expect(await socket.waitClosed(2_000)).toMatchObject({ code: 4001 });
	});

	it("fan out every message to every socket in the same order, acked once durable", async () => {
		const owner = await signUp();
		const others = await Promise.all([signUp(), signUp(), signUp()]);
		const id = await createGroup(
			owner.accessToken,
			others.map((o) => o.id),
		);
		const everyone = [owner, ...others];
		const sockets = await Promise.all(
			everyone.map((u) => TestSocket.open(`/v1/conversations/${id}/ws`, u.accessToken)),
		);
		await Promise.all(sockets.map((s) => s.next("ready")));
		const total = 20;
		for (let i = 0; i < total; i++) {
			const sender = sockets[i % sockets.length] as TestSocket;
			sender.send({ type: "send", clientId: `c${i}`, ciphertext: b64(`message ${i}`) });
		}
		await Promise.all(sockets.map((s) => s.next("message", (f) => f.message.seq === total, 10_000)));
		const orders = sockets.map((s) => s.messages().map((m) => `${m.seq}:${m.clientId}`));
		for (const order of orders) expect(order).toEqual(orders[0]);
		expect(orders[0]?.map((o) => Number(o.split(":")[0]))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
		// Sent together, most of these waited to be stored together: each sender still has one ack per message, with its seq.
		const seqOf = new Map(sockets[0]?.messages().map((m) => [m.clientId, m.seq]));
		await Promise.all(
			sockets.map((s, n) => s.next("ack", (f) => f.clientId === `c${total - sockets.length + n}`, 10_000)),
		);
		for (const [n, s] of sockets.entries()) {
			const acks = s.frames.flatMap((f) => (f.type === "ack" ? [`${f.clientId}:${f.seq}`] : []));
			const expected = Array.from({ length: total }, (_, i) => i)
				.filter((i) => i % sockets.length === n)
				.map((i) => `c${i}:${seqOf.get(`c${i}`)}`);
			expect(acks).toEqual(expected);
		}
		for (const s of sockets) s.close();
	});

	it("keep an acknowledged message when the object restarts right after the ack", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		await ws.next("ready");
		ws.send({ type: "send", clientId: "durable-1", ciphertext: b64("keep me") });
		const ack = await ws.next("ack");
		await abortAllDurableObjects();
		const history = await call<{ messages: Array<{ seq: number; clientId: string }> }>(
			`/v1/conversations/${id}/messages`,
			{
				token: a.accessToken,
			},
		);
		expect(history.body.messages).toEqual([expect.objectContaining({ seq: ack.seq, clientId: "durable-1" })]);
	});

	it("answer a repeated clientId with the stored message, not a new one", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		await ws.next("ready");
		ws.send({ type: "send", clientId: "dup", ciphertext: b64("once") });
		ws.send({ type: "send", clientId: "dup", ciphertext: b64("once") });
		ws.send({ type: "send", clientId: "after", ciphertext: b64("twice") });
		const after = await ws.next("ack", (f) => f.clientId === "after");
		const dupAcks = ws.frames.filter((f) => f.type === "ack" && f.clientId === "dup");
		expect(dupAcks.map((f) => (f as { seq: number }).seq)).toEqual([1, 1]);
		expect(after.seq).toBe(2);
	});

	it("refuse oversized ciphertext with a TOO_LARGE error frame", async () => {
		const a = await signUp();
		const id = await createGroup(a.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		await ws.next("ready");
		ws.send({ type: "send", clientId: "big", ciphertext: "A".repeat(Math.ceil((64 * 1024 * 4) / 3) + 8) });
		expect(await ws.next("error")).toMatchObject({ code: "TOO_LARGE" });
		ws.send("{not json");
		expect(await ws.next("error", (f) => f.code === "BAD_FRAME")).toBeTruthy();
	});

	it("announce members coming online together in a burst, not one message per member to every socket", async () => {
		const owner = await signUp();
		const members = await Promise.all(Array.from({ length: 12 }, () => signUp()));
		const id = await createGroup(
			owner.accessToken,
			members.map((m) => m.id),
		);
		const watcher = await TestSocket.open(`/v1/conversations/${id}/ws`, owner.accessToken, [
			BATCH_SUBPROTOCOL,
			`bearer.${owner.accessToken}`,
		]);
		await watcher.next("ready");
		const before = watcher.received.length;
		const sockets = await Promise.all(members.map((m) => TestSocket.open(`/v1/conversations/${id}/ws`, m.accessToken)));
		for (const m of members) await watcher.next("presence", (f) => f.userId === m.id && f.state === "online");
		const online = watcher.frames.filter((f) => f.type === "presence" && f.state === "online");
		expect(new Set(online.map((f) => (f.type === "presence" ? f.userId : ""))).size).toBe(members.length);
		expect(online).toHaveLength(members.length);
		// Twelve arrivals within a few coalescing windows: far fewer messages than members.
		expect(watcher.received.length - before).toBeLessThan(members.length / 2);
		for (const socket of [watcher, ...sockets]) socket.close();
	});

	it("carry typing, receipts and presence", async () => {
		const a = await signUp();
		const b = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		const wa = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		await wa.next("ready");
		const wb = await TestSocket.open(`/v1/conversations/${id}/ws`, b.accessToken);
		await wb.next("ready");
		expect(await wa.next("presence", (f) => f.userId === b.id && f.state === "online")).toBeTruthy();
		expect(await wb.next("presence", (f) => f.userId === a.id && f.state === "online")).toBeTruthy();
		wa.send({ type: "typing", on: true });
		expect(await wb.next("typing")).toMatchObject({ userId: a.id, on: true });
		wa.send({ type: "send", clientId: "r1", ciphertext: b64("read me") });
		await wb.next("message");
		wb.send({ type: "read", seq: 1 });
		expect(await wa.next("receipt")).toMatchObject({ userId: b.id, seq: 1 });
		wb.send({ type: "presence", state: "away" });
		expect(await wa.next("presence", (f) => f.userId === b.id && f.state === "away")).toBeTruthy();
		const seen = wa.frames.length;
		wb.close();
		const offline = await wa.next("presence", (f) => f.userId === b.id && f.state === "offline", 5_000, seen);
		expect(offline.lastSeenAt).toBeTruthy();
		wa.send({ type: "ping" });
		expect(await wa.next("pong")).toEqual({ type: "pong" });
	});

	it("close a removed member's sockets at once", async () => {
		const owner = await signUp();
		const member = await signUp();
		const id = await createGroup(owner.accessToken, [member.id, (await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, member.accessToken);
		await ws.next("ready");
		expect(
			(await call(`/v1/conversations/${id}/members/${member.id}`, { method: "DELETE", token: owner.accessToken }))
				.status,
		).toBe(204);
		expect((await ws.waitClosed()).code).toBe(4003);
		expect((await TestSocket.refusal(`/v1/conversations/${id}/ws`, member.accessToken)).status).toBe(404);
	});

	it("edit and delete are new events referring to the original; delete leaves a tombstone", async () => {
		const a = await signUp();
		const b = await signUp();
		const id = await createGroup(a.accessToken, [b.id]);
		const wa = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
		const wb = await TestSocket.open(`/v1/conversations/${id}/ws`, b.accessToken);
		await wa.next("ready");
		await wb.next("ready");
		wa.send({ type: "send", clientId: "orig", ciphertext: b64("v1") });
		await wa.next("ack");
		wb.send({ type: "edit", clientId: "hijack", refSeq: 1, ciphertext: b64("mine now") });
		expect(await wb.next("error")).toMatchObject({ code: "FORBIDDEN" });
		wa.send({ type: "edit", clientId: "e1", refSeq: 1, ciphertext: b64("v2") });
		expect(await wb.next("message", (f) => f.message.kind === "edit")).toMatchObject({
			message: { refSeq: 1, seq: 2 },
		});
		wa.send({ type: "delete", clientId: "d1", refSeq: 1 });
		expect(await wb.next("message", (f) => f.message.kind === "delete")).toMatchObject({
			message: { refSeq: 1, seq: 3 },
		});
		const history = await call<{ messages: Array<{ seq: number; deleted: boolean; ciphertext: string }> }>(
			`/v1/conversations/${id}/messages`,
			{ token: b.accessToken },
		);
		expect(history.body.messages[0]).toMatchObject({ seq: 1, deleted: true, ciphertext: "" });
	});
});

describe("batches (the secureconnect.v1.batch subprotocol)", () => {
	const protocols = (token: string) => [BATCH_SUBPROTOCOL, APP_SUBPROTOCOL, `bearer.${token}`];

	it("a client batch is handled in order; its acks and messages reach a batch socket as one frame, others one by one", async () => {
		const owner = await signUp();
		const member = await signUp();
		const reader = await signUp();
		const id = await createGroup(owner.accessToken, [member.id, reader.id]);
		const batched = await TestSocket.open(
			`/v1/conversations/${id}/ws`,
			owner.accessToken,
			protocols(owner.accessToken),
		);
		const plain = await TestSocket.open(`/v1/conversations/${id}/ws`, member.accessToken, [
			APP_SUBPROTOCOL,
			`bearer.${member.accessToken}`,
		]);
		const watcher = await TestSocket.open(
			`/v1/conversations/${id}/ws`,
			reader.accessToken,
			protocols(reader.accessToken),
		);
		expect(batched.protocol).toBe(BATCH_SUBPROTOCOL);
		expect(plain.protocol).toBe(APP_SUBPROTOCOL);
		await Promise.all([batched.next("ready"), plain.next("ready"), watcher.next("ready")]);
		await watcher.next("presence", (f) => f.userId === member.id && f.state === "online");
		const before = batched.received.length;
		const watched = watcher.received.length;
		batched.send({
			type: "batch",
			frames: ["b1", "b2", "b3"].map((clientId) => ({ type: "send", clientId, ciphertext: b64(clientId) })),
		});
		await batched.next("ack", (f) => f.clientId === "b3");
		const frame = batched.received.slice(before).find((f) => f.type === "batch");
		expect(
			frame?.type === "batch" &&
				frame.frames.map((f) =>
					f.type === "ack" ? `ack ${f.seq}` : f.type === "message" ? `message ${f.message.seq}` : f.type,
				),
		).toEqual(["message 1", "ack 1", "message 2", "ack 2", "message 3", "ack 3"]);
		await plain.next("message", (f) => f.message.seq === 3);
		const plainMessages = plain.received.filter((f) => f.type === "message" || f.type === "batch");
		expect(plainMessages.map((f) => (f.type === "message" ? f.message.clientId : f.type))).toEqual(["b1", "b2", "b3"]);
		// Another member's batch socket: the three messages as one frame, no acks.
		await watcher.next("message", (f) => f.message.seq === 3);
		const seen = watcher.received.slice(watched).filter((f) => f.type === "message" || f.type === "batch");
		expect(
			seen.map((f) =>
				f.type === "batch" ? f.frames.map((g) => (g.type === "message" ? g.message.clientId : g.type)) : f.type,
			),
		).toEqual([["b1", "b2", "b3"]]);

		// Repeats, of a stored message and within the batch, are answered with the stored seq and not sent again.
		const from = batched.frames.length;
		batched.send({
			type: "batch",
			frames: ["b2", "b4", "b4"].map((clientId) => ({ type: "send", clientId, ciphertext: b64(clientId) })),
		});
		await batched.next("ack", (f) => f.clientId === "b4", 5_000, from);
		await plain.next("message", (f) => f.message.seq === 4);
		const answers = batched.frames.slice(from).filter((f) => f.type === "ack" || f.type === "message");
		expect(
			answers.map((f) =>
				f.type === "ack" ? `ack ${f.clientId} ${f.seq}` : f.type === "message" ? `message ${f.message.seq}` : "other",
			),
		).toEqual(["ack b2 2", "message 4", "ack b4 4", "ack b4 4"]);
		const history = await call<{ messages: Array<{ seq: number; clientId: string }> }>(
			`/v1/conversations/${id}/messages`,
			{
				token: owner.accessToken,
			},
		);
		expect(history.body.messages.map((m) => `${m.seq} ${m.clientId}`)).toEqual(["1 b1", "2 b2", "3 b3", "4 b4"]);
	});

	it("refuses a whole batch with one invalid frame and stores none of it", async () => {
		const owner = await signUp();
		const id = await createGroup(owner.accessToken, [(await signUp()).id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, owner.accessToken, protocols(owner.accessToken));
		await ws.next("ready");
		const refusal = async (frame: unknown) => {
			const from = ws.frames.length;
			ws.send(frame);
			const error = await ws.next("error", () => true, 5_000, from);
			expect(error.code).toBe("BAD_FRAME");
			return error.message;
		};
		const mixed = [
			{ type: "send", clientId: "ok", ciphertext: b64("fine") },
			{ type: "send", clientId: "bad", ciphertext: 42 },
		];
		expect(await refusal({ type: "batch", frames: mixed })).toContain("frames.1.ciphertext");
		expect(await refusal({ type: "batch", frames: [{ type: "auth", token: owner.accessToken }] })).toContain(
			"frames.0.type",
		);
		const tooMany = Array.from({ length: MAX_BATCH_FRAMES + 1 }, () => ({ type: "ping" }));
		expect(await refusal({ type: "batch", frames: tooMany })).toContain("frames");
		expect(await refusal({ type: "batch", frames: [] })).toContain("frames");
		ws.send({ type: "send", clientId: "after", ciphertext: b64("after") });
		expect((await ws.next("ack", (f) => f.clientId === "after")).seq).toBe(1);
		const history = await call<{ messages: Array<{ clientId: string }> }>(`/v1/conversations/${id}/messages`, {
			token: owner.accessToken,
		});
		expect(history.body.messages.map((m) => m.clientId)).toEqual(["after"]);
		expect(ws.frames.filter((f) => f.type === "pong")).toEqual([]);
	});

	it("answers pings and typing inside a batch like single frames", async () => {
		const owner = await signUp();
		const member = await signUp();
		const id = await createGroup(owner.accessToken, [member.id]);
		const ws = await TestSocket.open(`/v1/conversations/${id}/ws`, owner.accessToken, protocols(owner.accessToken));
		const other = await TestSocket.open(`/v1/conversations/${id}/ws`, member.accessToken);
		await Promise.all([ws.next("ready"), other.next("ready")]);
		ws.send({ type: "batch", frames: [{ type: "ping" }, { type: "typing", on: true }] });
		await ws.next("pong");
		expect(await other.next("typing")).toMatchObject({ userId: owner.id, on: true });
	});
});

describe("resume", () => {
	it("replays exactly what a socket missed, in order, at any disconnect point", async () => {
		const a = await signUp();
		const b = await signUp();
		await fc.assert(
			fc.asyncProperty(
				fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
				fc.integer({ min: 0, max: 4 }),
				async (bursts, missedWhileAway) => {
					const id = await createGroup(a.accessToken, [b.id]);
					const sender = await TestSocket.open(`/v1/conversations/${id}/ws`, a.accessToken);
					await sender.next("ready");
					let sent = 0;
					const seen: number[] = [];
					let lastSeq = 0;
					for (const burst of bursts) {
						const reader = await TestSocket.open(`/v1/conversations/${id}/ws`, b.accessToken);
						await reader.next("ready");
						reader.send({ type: "resume", afterSeq: lastSeq });
						await reader.next("resumed");
						for (let i = 0; i < burst; i++) {
							sender.send({ type: "send", clientId: `m${++sent}`, ciphertext: b64(`payload ${sent}`) });
						}
						await reader.next("message", (f) => f.message.seq === sent);
						reader.close();
						for (const m of reader.messages()) seen.push(m.seq);
						lastSeq = seen.at(-1) ?? lastSeq;
						// Messages sent while the reader is away.
						for (let i = 0; i < missedWhileAway; i++) {
							sender.send({ type: "send", clientId: `m${++sent}`, ciphertext: b64(`payload ${sent}`) });
						}
						await sender.next("ack", (f) => f.seq === sent);
					}
					const last = await TestSocket.open(`/v1/conversations/${id}/ws`, b.accessToken);
					await last.next("ready");
					last.send({ type: "resume", afterSeq: lastSeq });
					const resumed = await last.next("resumed");
					expect(resumed.toSeq).toBe(sent);
					for (const m of last.messages()) seen.push(m.seq);
					last.close();
					sender.close();
					expect(seen).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
				},
			),
			{ numRuns: 8 },
		);
	});
});

describe("user channel", () => {
	it("carries activity for every conversation on one socket, authenticated by the subprotocol or a first frame", async () => {
		const a = await signUp();
		const b = await signUp();
		const first = await createGroup(a.accessToken, [b.id], "One");
		const second = await createGroup(a.accessToken, [b.id], "Two");
		const byProtocol = await TestSocket.open("/v1/ws", b.accessToken);
		await byProtocol.next("ready");
		const byFrame = await TestSocket.open("/v1/ws");
		byFrame.send({ type: "auth", token: b.accessToken });
		await byFrame.next("ready");
		await call(`/v1/conversations/${first}/messages`, {
			token: a.accessToken,
			body: { clientId: "u1", ciphertext: b64("1") },
		});
		await call(`/v1/conversations/${second}/messages`, {
			token: a.accessToken,
			body: { clientId: "u2", ciphertext: b64("2") },
		});
		for (const socket of [byProtocol, byFrame]) {
			expect(await socket.next("activity", (f) => f.conversationId === first)).toMatchObject({ lastSeq: 1, unread: 1 });
			expect(await socket.next("activity", (f) => f.conversationId === second)).toMatchObject({
				lastSeq: 1,
				unread: 1,
			});
		}
		const third = await createGroup(a.accessToken, [b.id], "Three");
		expect(await byProtocol.next("membership", (f) => f.conversationId === third)).toMatchObject({ change: "added" });
		byProtocol.close();
		byFrame.close();
	});

	it("refuses a first frame that is not a valid auth", async () => {
		const ws = await TestSocket.open("/v1/ws");
		ws.send({ type: "auth", token: "definitely-not-a-token" });
		expect((await ws.waitClosed()).code).toBe(4001);
	});
});
