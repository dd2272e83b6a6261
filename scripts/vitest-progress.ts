// A vitest reporter that appends one JSON line per test file the moment it ends
// (and the run's plan first), so `npm test` can tell which files a stalled run
// finished and run only the others again. File: $VITEST_PROGRESS_FILE.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";
import type { Reporter, TestModule, TestSpecification } from "vitest/node";

const ROOT = new URL("..", import.meta.url).pathname;

/** Every test file the run will execute (repository-relative paths). */
export interface PlanLine {
	type: "plan";
	files: string[];
}

/** One finished test file and its tests' outcome. */
export interface FileLine {
	type: "file";
	file: string;
	passed: number;
	failed: number;
	/** "file › test: first line of the error", for the summary. */
	failures: string[];
}

export type ProgressLine = PlanLine | FileLine;

export interface Progress {
	/** Undefined when the run stopped before it knew its files. */
	plan: string[] | undefined;
	finished: Map<string, FileLine>;
}

export function readProgress(path: string): Progress {
	const progress: Progress = { plan: undefined, finished: new Map() };
	if (!existsSync(path)) return progress;
	for (const text of readFileSync(path, "utf8").split("\n")) {
		if (!text) continue;
		const line = JSON.parse(text) as ProgressLine;
		if (line.type === "plan") progress.plan ??= line.files;
		else progress.finished.set(line.file, line);
	}
	return progress;
}

const firstLine = (message: string | undefined) => (message ?? "").split("\n")[0]?.slice(0, 160) ?? "";

export default class ProgressReporter implements Reporter {
	readonly #path = process.env.VITEST_PROGRESS_FILE;

	#write(line: ProgressLine): void {
		if (this.#path) appendFileSync(this.#path, `${JSON.stringify(line)}\n`);
	}

	onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
		this.#write({ type: "plan", files: [...new Set(specifications.map((s) => relative(ROOT, s.moduleId)))] });
	}

	onTestModuleEnd(module: TestModule): void {
		const file = relative(ROOT, module.moduleId);
		const line: FileLine = { type: "file", file, passed: 0, failed: 0, failures: [] };
		for (const test of module.children.allTests()) {
			const result = test.result();
			if (result.state === "passed") line.passed++;
			else if (result.state === "failed") {
				line.failed++;
				line.failures.push(`${file} › ${test.fullName}: ${firstLine(result.errors[0]?.message)}`);
			}
		}
		// A file that failed outside any test (an import, a hook) counts once.
		if (line.failed === 0 && module.state() === "failed") {
			line.failed = 1;
			line.failures.push(`${file}: ${firstLine(module.errors()[0]?.message) || "failed outside any test"}`);
		}
		this.#write(line);
	}
}
