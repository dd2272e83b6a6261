import { describe, expect, it } from "vitest";
import {
	type Activity,
	ActivityAnnouncer,
	ANNOUNCE_INTERVAL_MS,
	ONLINE_ANNOUNCE_INTERVAL_MS,
	RECENT_SENDERS,
} from "./ActivityAnnouncer.ts";

function room(members: string[], online: string[] = []) {
	const heard: Array<{ userId: string; at: number } & Activity> = [];
	const announcer = new ActivityAnnouncer({
		members: () => members,
		online: () => new Set(online),
		tell: async (userId, activity) => {
			heard.push({ userId, at: Date.now(), ...activity });
		},
	});
	const of = (userId: string) => heard.filter((h) => h.userId === userId);
	return { announcer, heard, of };
}

describe("ActivityAnnouncer", () => {
	it("tells every member of the first message at once, the sender's own seq included", async () => {
		const { announcer, heard } = room(["alice", "bob"]);
		const t0 = Date.now();
		await announcer.stored(1, "alice", "req-1");
		expect(heard.map(({ at: _at, ...h }) => h)).toEqual([
			{ userId: "alice", lastSeq: 1, ownSeq: 1, onlineHere: false, requestId: "req-1", senderIds: [] },
			{ userId: "bob", lastSeq: 1, ownSeq: undefined, onlineHere: false, requestId: "req-1", senderIds: ["alice"] },
		]);
		expect(Math.max(...heard.map((h) => h.at)) - t0).toBeLessThan(ANNOUNCE_INTERVAL_MS);
	});

	it("coalesces a burst: a member away from the room every 100 ms, one in it every 5 s, both end current", async () => {
		const { announcer, of } = room(["alice", "bob", "carol"], ["carol"]);
		const t0 = Date.now();
		const settled: Promise<void>[] = [];
		for (let seq = 1; seq <= 60; seq++) {
			settled.push(announcer.stored(seq, seq % 2 ? "alice" : "carol", undefined));
			await new Promise((resolve) => setTimeout(resolve, 10));
		}
		await Promise.all(settled);
		// Carol is in the room: her channel catches up at its own pace.
		while ((of("carol").at(-1)?.lastSeq ?? 0) < 60) await new Promise((resolve) => setTimeout(resolve, 50));
		const elapsed = Date.now() - t0;
		const bob = of("bob");
		const carol = of("carol");
		expect(bob.at(-1)?.lastSeq).toBe(60);
		expect(carol.at(-1)?.lastSeq).toBe(60);
		// Each member's interval is spread by 0.5–1.5 so that members told together do not come due together.
		expect(bob.length).toBeLessThanOrEqual(Math.ceil(elapsed / (ANNOUNCE_INTERVAL_MS * 0.5)) + 1);
		expect(bob.length).toBeGreaterThan(1);
		expect(carol.length).toBeLessThanOrEqual(Math.ceil(elapsed / (ONLINE_ANNOUNCE_INTERVAL_MS * 0.5)) + 1);
		expect(carol.every((h) => h.onlineHere)).toBe(true);
		// Carol sent the even seqs: each report carries the latest of hers since the one before.
		for (const report of carol) if (report.ownSeq !== undefined) expect(report.ownSeq % 2).toBe(0);
		// Alice (away) sent the odd seqs: her own last one reached her, in whichever report was due then.
		const alice = of("alice");
		expect(alice.at(-1)?.lastSeq).toBe(60);
		expect(Math.max(...alice.map((h) => h.ownSeq ?? 0))).toBe(59);
	});

	it("answers a message once every member away from the room has heard; one in it hears later", async () => {
		const { announcer, of } = room(["alice", "bob"], ["bob"]);
		await announcer.stored(1, "alice", undefined);
		await announcer.stored(2, "alice", undefined);
		expect(of("alice").at(-1)?.lastSeq).toBe(2);
		expect(of("bob").at(-1)?.lastSeq).toBe(1);
		while ((of("bob").at(-1)?.lastSeq ?? 0) < 2) await new Promise((resolve) => setTimeout(resolve, 50));
		expect(of("bob")).toHaveLength(2);
	});

	it("names who else sent what a member has not heard of; nobody once that is no longer remembered", async () => {
		const { announcer, of } = room(["alice", "bob", "carol"]);
		await announcer.stored(1, "alice", undefined);
		expect(of("alice").at(-1)?.senderIds).toEqual([]);
		expect(of("bob").at(-1)?.senderIds).toEqual(["alice"]);
		await Promise.all([announcer.stored(2, "carol", undefined), announcer.stored(3, "alice", undefined)]);
		expect(of("bob").at(-1)).toMatchObject({ lastSeq: 3, senderIds: expect.arrayContaining(["alice", "carol"]) });
		expect(of("carol").at(-1)).toMatchObject({ lastSeq: 3, senderIds: ["alice"] });

		const burst: Promise<void>[] = [];
		for (let seq = 4; seq <= 5 + RECENT_SENDERS; seq++) burst.push(announcer.stored(seq, "alice", undefined));
		await Promise.all(burst);
		// Bob last heard of seq 3 or 4: the senders of some that followed are forgotten.
		expect(of("bob").at(-1)).toMatchObject({ lastSeq: 5 + RECENT_SENDERS, senderIds: undefined });
	});

	it("owes nothing to a member who left", async () => {
		const members = ["alice", "bob"];
		const { announcer, of } = room(members, ["bob"]);
		await announcer.stored(1, "alice", undefined);
		await announcer.stored(2, "alice", undefined);
		members.pop();
		announcer.forget("bob");
		await announcer.stored(3, "alice", undefined);
		await new Promise((resolve) => setTimeout(resolve, ONLINE_ANNOUNCE_INTERVAL_MS * 1.6));
		expect(of("bob").map((h) => h.lastSeq)).toEqual([1]);
		expect(of("alice").at(-1)?.lastSeq).toBe(3);
	});
});
