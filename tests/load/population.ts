// Accounts and group conversations for the load test, made through the public
// API as a client would (register, login, POST /v1/conversations).
import { z } from "zod";
import {
	Conversation,
	type CreateConversationRequest,
	HISTORY_PAGE_MAX,
	HistoryPage,
	type LoginRequest,
	LoginResponse,
	type RegisterRequest,
	RegisterResponse,
} from "../../protocol/src/index.ts";
import { type CallOptions, callApi } from "../http.ts";

export interface Account {
	userId: string;
	token: string;
}

export interface Group {
	id: string;
	/** Account of each member, member 0 (the owner) first; each member is a distinct user. */
	members: Account[];
}

const CreateConversationResponse = z.object({ conversation: Conversation });

async function call<T>(
	api: string,
	method: string,
	path: string,
	schema: z.ZodType<T>,
	options: CallOptions = {},
): Promise<T> {
	return schema.parse(await callApi(api, method, path, options));
}

/** Runs `work(i)` for i < count, `concurrency` at a time. */
async function pool<T>(count: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
	const results: T[] = [];
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(concurrency, count) }, async () => {
			while (next < count) {
				const i = next++;
				results[i] = await work(i);
			}
		}),
	);
	return results;
}

/** Registers and signs in `count` accounts (two Argon2id hashes each in the api), `concurrency` at a time. */
export function createAccounts(api: string, count: number, concurrency: number): Promise<Account[]> {
	const run = Date.now().toString(36);
	const password = "load test passphrase 42";
	return pool(count, concurrency, async (i) => {
		const email = `load-${run}-${i}@example.test`;
		const register: z.input<typeof RegisterRequest> = {
			email,
			password,
			handle: `ld_${run}_${i}`,
			displayName: `Load ${i}`,
		};
		const { user } = await call(api, "POST", "/v1/auth/register", RegisterResponse, { body: register });
		const login: z.input<typeof LoginRequest> = { email, password, deviceName: "load test" };
		const { accessToken } = await call(api, "POST", "/v1/auth/login", LoginResponse, { body: login });
		return { userId: user.id, token: accessToken };
	});
}

/**
 * `count` groups of `size` distinct members each. Member k of group g is
 * account (g × size + k) mod accounts: with as many accounts as sockets every
 * member is in one group; with fewer, each account is in several groups (one
 * socket in each, within the per-conversation MAX_SOCKETS_PER_USER).
 */
export async function createGroups(api: string, accounts: Account[], count: number, size: number): Promise<Group[]> {
	if (accounts.length < size) throw new Error(`${size} members per conversation need at least ${size} accounts`);
	return pool(count, 4, async (g) => {
		const members = Array.from({ length: size }, (_, k) => accounts[(g * size + k) % accounts.length] as Account);
		const [owner, ...others] = members as [Account, ...Account[]];
		const body: z.input<typeof CreateConversationRequest> = {
			type: "group",
			memberIds: others.map((m) => m.userId),
			title: `load ${g}`,
		};
		const { conversation } = await call(api, "POST", "/v1/conversations", CreateConversationResponse, {
			body,
			token: owner.token,
		});
		return { id: conversation.id, members };
	});
}

/** The stored log of a conversation through GET /v1/conversations/{id}/messages: clientId by seq. */
export async function storedLog(api: string, group: Group): Promise<Map<number, string>> {
	const log = new Map<number, string>();
	let after = 0;
	for (;;) {
		const page = await call(
			api,
			"GET",
			`/v1/conversations/${group.id}/messages?after=${after}&limit=${HISTORY_PAGE_MAX}`,
			HistoryPage,
			{ token: (group.members[0] as Account).token },
		);
		for (const message of page.messages) log.set(message.seq, message.clientId);
		const last = page.messages.at(-1);
		if (!page.hasMore || !last) return log;
		after = last.seq;
	}
}
