import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ProgressLine, readProgress } from "./vitest-progress.ts";

const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function progressFile(lines: ProgressLine[]): string {
	const dir = mkdtempSync(join(tmpdir(), "vitest-progress-"));
	dirs.push(dir);
	const path = join(dir, "stage.jsonl");
	writeFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
	return path;
}

const file = (name: string, passed: number, failed = 0) =>
	({ type: "file", file: name, passed, failed, failures: failed ? [`${name} › t: boom`] : [] }) as const;

describe("readProgress", () => {
	it("keeps the first run's plan when a retry writes the plan of the files it ran again", () => {
		const path = progressFile([
			{ type: "plan", files: ["a.test.ts", "b.test.ts", "c.test.ts"] },
			file("a.test.ts", 3),
			{ type: "plan", files: ["b.test.ts", "c.test.ts"] },
			file("b.test.ts", 2),
			file("c.test.ts", 1, 1),
		]);
		const { plan, finished } = readProgress(path);
		expect(plan).toEqual(["a.test.ts", "b.test.ts", "c.test.ts"]);
		expect([...finished.keys()]).toEqual(["a.test.ts", "b.test.ts", "c.test.ts"]);
		expect(finished.get("c.test.ts")).toMatchObject({ passed: 1, failed: 1, failures: ["c.test.ts › t: boom"] });
	});

	it("tells which files a stalled run left unfinished", () => {
		const path = progressFile([{ type: "plan", files: ["a.test.ts", "b.test.ts", "c.test.ts"] }, file("a.test.ts", 3)]);
		const { plan, finished } = readProgress(path);
		expect(plan?.filter((f) => !finished.has(f))).toEqual(["b.test.ts", "c.test.ts"]);
	});

	it("has no plan when the run stopped before it knew its files", () => {
		expect(readProgress(join(tmpdir(), "no-such-progress-file.jsonl"))).toEqual({
			plan: undefined,
			finished: new Map(),
		});
	});
});
