import { env, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";

it("probe", async () => {
	const m = env.METRICS as unknown as Record<string, unknown>;
	console.warn("PROBE METRICS", typeof m, m && Object.prototype.toString.call(m), m && typeof m.writeDataPoint);
	m?.writeDataPoint && (m.writeDataPoint as (p: unknown) => void)({ blobs: ["x"], doubles: [1], indexes: ["i"] });
	const stub = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName("probe"));
	await runInDurableObject(stub, (instance) => {
		const e = (instance as unknown as { env: Record<string, unknown> }).env;
		console.warn("PROBE same env?", e === (env as unknown), e.METRICS === env.METRICS);
	});
	console.warn("PROBE tables", JSON.stringify(await stub.snapshotTables()));
	console.warn("PROBE page", JSON.stringify(await stub.exportPage("meta", 0)));
	await stub.finishImport().catch((e: unknown) => console.warn("PROBE abort error", String(e)));
	const stub2 = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName("probe"));
	console.warn("PROBE after", JSON.stringify(await stub2.snapshotTables()));
	expect(1).toBe(1);
});
