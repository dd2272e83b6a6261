// The SDK against the real api in workerd: three users talk in an MLS group,
// a fourth joins late, one is removed, and concurrent commits are ordered.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { WebSocketLike } from "./ConversationSocket.ts";
import { decryptFile, encryptFile } from "./files.ts";
import { SecureConnectClient } from "./SecureConnectClient.ts";

let counter = 0;
async function newUser(name: string): Promise<SecureConnectClient> {
	const client = await SecureConnectClient.create({
		baseUrl: "http://api.test",
		fetch: (input, init) => SELF.fetch(input, init),
		connect: async (url, protocols) => {
			const res = await SELF.fetch(url.replace(/^ws/, "http"), {
				headers: { upgrade: "websocket", "sec-websocket-protocol": protocols.join(", ") },
			});
			if (!res.webSocket) throw new Error(`upgrade refused: ${res.status}`);
			res.webSocket.accept();
			return res.webSocket as unknown as WebSocketLike;
		},
	});
	const id = `${name}${Date.now().toString(36)}${++counter}`;
	const email = `${id}@example.test`;
	const password = "sdk test passphrase 123";
	await client.register({ email, password, handle: id, displayName: name });
	await client.login(email, password, `${name}'s laptop`);
	await client.registerDevice(`${name}'s laptop`, 5);
	return client;
}

const texts = (messages: Awaited<ReturnType<SecureConnectClient["sync"]>>) =>
	messages.filter((m) => m.kind === "application").map((m) => m.text);

describe("SDK: end-to-end encrypted group", () => {
	it("three users exchange messages; a late member reads only what follows; a removed one reads nothing more", async () => {
		const [alice, bob, carol, dave] = await Promise.all([
			newUser("alice"),
			newUser("bob"),
			newUser("carol"),
			newUser("dave"),
		]);
		const ids = (c: SecureConnectClient) => c.user?.id as string;
		const conversation = await alice.startConversation([ids(bob), ids(carol)], "Plans");
		expect(await bob.acceptInvites(conversation)).toBe(true);
		expect(await carol.acceptInvites(conversation)).toBe(true);

		await alice.send(conversation, "hello from alice");
		await bob.sync(conversation);
		await bob.send(conversation, "hi alice, bob here");
		await carol.sync(conversation);
		await carol.send(conversation, "carol says hi");
		expect(texts(await alice.sync(conversation))).toEqual(["hi alice, bob here", "carol says hi"]);
		expect(texts(await bob.sync(conversation))).toEqual(["carol says hi"]);

		// The server holds only ciphertext.
		const raw = (await alice.http.request("GET", `/v1/conversations/${conversation}/messages`)) as {
			messages: Array<{ ciphertext: string }>;
		};
		expect(JSON.stringify(raw)).not.toContain(btoa("hello from alice").slice(0, 12));

		await alice.addMembers(conversation, [ids(dave)]);
		expect(await dave.acceptInvites(conversation)).toBe(true);
		const daveFirst = await dave.sync(conversation);
		expect(texts(daveFirst)).toEqual([]);
		expect(daveFirst.some((m) => m.kind === "undecryptable")).toBe(true);
		await bob.sync(conversation);
		await bob.send(conversation, "welcome dave");
		expect(texts(await dave.sync(conversation))).toEqual(["welcome dave"]);

		await carol.sync(conversation);
		await alice.sync(conversation);
		await alice.removeMember(conversation, ids(carol));
		await bob.sync(conversation);
		await bob.send(conversation, "carol is gone");
		await dave.sync(conversation);
		expect(texts(await alice.sync(conversation))).toContain("carol is gone");
		expect(texts(await dave.sync(conversation))).toEqual([]);
		// Carol lost access to the conversation and could not decrypt it anyway.
		await expect(carol.sync(conversation)).rejects.toMatchObject({ status: 404 });
	});

	it("a stale-epoch commit is refused with the current epoch; the client catches up and retries", async () => {
		const [alice, bob, carol, dave, erin] = (await Promise.all(
			["al", "bo", "ca", "da", "er"].map((n) => newUser(n)),
		)) as [SecureConnectClient, SecureConnectClient, SecureConnectClient, SecureConnectClient, SecureConnectClient];
		const ids = (c: SecureConnectClient) => c.user?.id as string;
		const conversation = await alice.startConversation([ids(erin)]);
		await alice.addMembers(conversation, [ids(bob)], { role: "admin" });
		await bob.acceptInvites(conversation);
		// Alice's commit wins the epoch; Bob, who has not seen it, commits for the same epoch,
		// is refused with STALE_EPOCH, catches up and succeeds on his second attempt.
		expect(await alice.addMembers(conversation, [ids(carol)])).toBe(1);
		expect(await bob.addMembers(conversation, [ids(dave)])).toBe(2);
		const state = (await alice.http.request("GET", `/v1/conversations/${conversation}/mls`)) as { epoch: number };
		expect(state.epoch).toBe(4);
		await alice.sync(conversation);
		await bob.sync(conversation);
		expect(await carol.acceptInvites(conversation)).toBe(true);
		expect(await dave.acceptInvites(conversation)).toBe(true);
		await carol.sync(conversation);
		await dave.sync(conversation);
		await alice.send(conversation, "everyone in epoch 4");
		for (const reader of [bob, carol, dave])
			expect(texts(await reader.sync(conversation))).toContain("everyone in epoch 4");
	});

	it("the REST answer to a stale commit names the current epoch", async () => {
		const [alice, bob] = await Promise.all([newUser("x"), newUser("y")]);
		const conversation = await alice.startConversation([bob.user?.id as string]);
		const first = (await alice.http.request("GET", `/v1/conversations/${conversation}/messages`)) as {
			messages: Array<{ ciphertext: string }>;
		};
		const replayedCommit = first.messages[0]?.ciphertext as string;
		await expect(
			alice.http.request("POST", `/v1/conversations/${conversation}/messages`, {
				clientId: "replay",
				ciphertext: replayedCommit,
			}),
		).rejects.toMatchObject({ status: 409, code: "STALE_EPOCH", details: { currentEpoch: 1 } });
	});

	it("live sockets deliver decrypted messages and resume after a drop", async () => {
		const [alice, bob] = await Promise.all([newUser("ls"), newUser("lt")]);
		const conversation = await alice.startConversation([bob.user?.id as string]);
		await bob.acceptInvites(conversation);
		await bob.sync(conversation);
		const received: string[] = [];
		const socket = bob.connect(conversation, (m) => {
			if (m.text) received.push(m.text);
		});
		await socket.ready;
		await alice.send(conversation, "one");
		socket.interrupt();
		await alice.send(conversation, "two");
		await alice.send(conversation, "three");
		const deadline = Date.now() + 10_000;
		while (received.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
		socket.close();
		expect(received).toEqual(["one", "two", "three"]);
	});

	it("encrypts files with a fresh key the server never sees", async () => {
		const plaintext = new TextEncoder().encode("attachment body");
		const { ciphertext, fileKey } = await encryptFile(plaintext);
		expect(new TextDecoder().decode(ciphertext)).not.toContain("attachment");
		expect(new TextDecoder().decode(await decryptFile(ciphertext, fileKey))).toBe("attachment body");
	});
});
