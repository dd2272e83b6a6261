import { describe, expect, it } from "vitest";
import {
	PRESENCE_COALESCE_MAX_MS,
	PRESENCE_COALESCE_MS,
	PRESENCE_COALESCE_MS_PER_SOCKET,
	presenceWindowMs,
} from "./presence-window.ts";

describe("presenceWindowMs", () => {
	it("keeps small rooms at the base window", () => {
		for (const sockets of [0, 1, 2, 50, PRESENCE_COALESCE_MS / PRESENCE_COALESCE_MS_PER_SOCKET]) {
			expect(presenceWindowMs(sockets)).toBe(PRESENCE_COALESCE_MS);
		}
	});

	it("grows with the sockets, so a storm of changes costs a bounded number of sends per second", () => {
		const sendsPerSecond = (sockets: number) => sockets * (1000 / presenceWindowMs(sockets));
		expect(presenceWindowMs(400)).toBe(200);
		expect(presenceWindowMs(1000)).toBe(PRESENCE_COALESCE_MAX_MS);
		for (const sockets of [200, 300, 500, 800, 1000]) {
			expect(sendsPerSecond(sockets)).toBeCloseTo(1000 / PRESENCE_COALESCE_MS_PER_SOCKET);
		}
	});

	it("stops growing at the cap: presence never waits longer than PRESENCE_COALESCE_MAX_MS", () => {
		expect(presenceWindowMs(5_000)).toBe(PRESENCE_COALESCE_MAX_MS);
		expect(presenceWindowMs(100_000)).toBe(PRESENCE_COALESCE_MAX_MS);
	});
});
