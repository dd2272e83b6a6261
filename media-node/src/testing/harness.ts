// Per test: a fake api serving one signing key, media nodes started against it,
// and everything a test opens closed again afterwards, newest first.
import { afterEach, beforeEach } from "vitest";
import { FakeApi, type SigningKey, signingKey, startNode, TEST_SECRET, type TestNode } from "./fixtures.ts";

export interface NodeHarness {
	readonly api: FakeApi;
	readonly key: SigningKey;
	/** Runs `cleanup` after the test (before the fake api closes). */
	defer(cleanup: () => Promise<void> | void): void;
	/** A media node against the fake api (heartbeats every 60 s unless `env` says otherwise). */
	node(env?: Record<string, string>): Promise<TestNode>;
}

export function nodeHarness(): NodeHarness {
	let api: FakeApi | undefined;
	let key: SigningKey | undefined;
	const cleanups: Array<() => Promise<void> | void> = [];
	beforeEach(async () => {
		const started = await FakeApi.start();
		api = started;
		key = await signingKey("kid-1");
		started.keys.push(key);
		cleanups.push(() => started.close());
	});
	afterEach(async () => {
		for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
	});
	const harness: NodeHarness = {
		get api() {
			if (!api) throw new Error("the fake api starts before each test");
			return api;
		},
		get key() {
			if (!key) throw new Error("the signing key is made before each test");
			return key;
		},
		defer: (cleanup) => {
			cleanups.push(cleanup);
		},
		node: async (env = {}) => {
			const started = await startNode({
				API_URL: harness.api.url,
				MEDIA_NODE_SECRET: TEST_SECRET,
				MEDIA_HEARTBEAT_MS: "60000",
				...env,
			});
			cleanups.push(() => started.node.close());
			return started;
		},
	};
	return harness;
}
