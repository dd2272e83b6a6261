// The server never holds plaintext: a random canary goes into messages and a
// file, then every place the server keeps data (and its logs) is searched.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WebSocketLike } from "../../../../sdk/src/ConversationSocket.ts";
import { encryptFile } from "../../../../sdk/src/files.ts";
import { SecureConnectClient } from "../../../../sdk/src/SecureConnectClient.ts";
import { loadConfig } from "../config/config.ts";
import { openDatabase } from "../db/client.ts";

const captured: string[] = [];
beforeEach(() => {
	for (const method of ["log", "info", "warn", "error", "debug"] as const) {
		vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
			captured.push(args.map(String).join(" "));
		});
	}
});
afterEach(() => {
	vi.restoreAllMocks();
});

async function client(name: string): Promise<SecureConnectClient> {
	const c = await SecureConnectClient.create({
		baseUrl: "http://api.test",
		fetch: (input, init) => SELF.fetch(input, init),
		connect: async (url, protocols) => {
			const res = await SELF.fetch(url.replace(/^ws/, "http"), {
				headers: { upgrade: "websocket", "sec-websocket-protocol": protocols.join(", ") },
			});
			res.webSocket?.accept();
			return res.webSocket as unknown as WebSocketLike;
		},
	});
	const id = `${name}${crypto.randomUUID().slice(0, 8)}`;
	await c.register({ email: `${id}@example.test`, password: "privacy test passphrase", handle: id, displayName: name });
	await c.login(`${id}@example.test`, "privacy test passphrase");
	await c.registerDevice(`${name} device`, 3);
	return c;
}

function sqliteDump(state: DurableObjectState): string {
	const tables = state.storage.sql
		.exec<{ name: string }>(
			"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'",
		)
		.toArray();
	return JSON.stringify(tables.map(({ name }) => state.storage.sql.exec(`SELECT * FROM "${name}"`).toArray()));
}

describe("privacy", () => {
	it("no plaintext canary in Postgres, Durable Object storage, R2 or the logs", async () => {
		const canary = `canary-${crypto.randomUUID()}`;
		const alice = await client("alice");
		const bob = await client("bob");
		const conversation = await alice.startConversation([bob.user?.id as string], "private");
		await bob.acceptInvites(conversation);
		await alice.send(conversation, `the secret is ${canary}`);
		await bob.sync(conversation);
		await bob.send(conversation, `got it: ${canary}`);

		const { ciphertext, fileKey } = await encryptFile(new TextEncoder().encode(`file body with ${canary}`));
		const created = (await alice.http.request("POST", "/v1/files", {
			size: ciphertext.length,
			contentType: "application/octet-stream",
			conversationId: conversation,
		})) as { file: { id: string } };
		const token = await alice.accessToken();
		const put = await SELF.fetch(`http://api.test/v1/files/${created.file.id}/content`, {
			method: "PUT",
			headers: { authorization: `Bearer ${token}`, "content-length": String(ciphertext.length) },
			body: ciphertext,
		});
		expect(put.status).toBeLessThan(300);
		await alice.http.request("POST", `/v1/files/${created.file.id}/complete`);
		await alice.send(
			conversation,
			JSON.stringify({ type: "file", fileId: created.file.id, name: `${canary}.txt`, ...fileKey }),
		);
		expect((await bob.sync(conversation)).map((m) => m.text).join("\n")).toContain(canary);

		const needles = [canary, btoa(canary)];
		const haystacks: Record<string, string> = {};

		const config = await loadConfig(env);
		const handle = openDatabase(config.database);
		try {
			const tables = await handle.db.execute<{ table_name: string }>(
				sql`select table_name from information_schema.tables where table_schema = 'public'`,
			);
			for (const { table_name } of tables.rows) {
				const rows = await handle.db.execute(sql.raw(`select * from "${table_name}"`));
				haystacks[`postgres.${table_name}`] = JSON.stringify(rows.rows);
			}
		} finally {
			await handle.close();
		}
		expect(Object.keys(haystacks).length).toBeGreaterThan(8);

		haystacks.room = await runInDurableObject(env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(conversation)), (_i, s) =>
			sqliteDump(s),
		);
		for (const user of [alice, bob]) {
			const id = user.user?.id as string;
			haystacks[`channel.${id}`] = await runInDurableObject(
				env.USER_CHANNEL.get(env.USER_CHANNEL.idFromName(id)),
				(_i, s) => sqliteDump(s),
			);
		}
		expect(haystacks.room).toContain(conversation);

		let objects = 0;
		for (const object of (await env.FILES.list()).objects) {
			const body = await env.FILES.get(object.key);
			haystacks[`r2.${object.key}`] = body ? await body.text() : "";
			objects++;
		}
		expect(objects).toBeGreaterThan(0);
		haystacks.logs = captured.join("\n");
		expect(captured.length).toBeGreaterThan(5);

		for (const [where, text] of Object.entries(haystacks)) {
			for (const needle of needles) expect(text.includes(needle), `${where} holds the canary`).toBe(false);
		}
	});
});
