import { describe, expect, it } from "vitest";
import commonPasswordsText from "../auth/common-passwords.txt";
import { countLines, sortedLinesInclude } from "./sorted-lines.ts";

describe("sortedLinesInclude", () => {
	const text = ["alpha", "bravo", "charlie", "delta", "echo"].join("\n");

	it("finds every line, first and last included, with or without a final newline", () => {
		for (const sorted of [text, `${text}\n`]) {
			for (const word of ["alpha", "bravo", "charlie", "delta", "echo"])
				expect(sortedLinesInclude(sorted, word)).toBe(true);
		}
	});

	it("finds no word that is not a whole line", () => {
		for (const word of ["", "a", "alph", "alphab", "bravo\ncharlie", "charlie ", "zulu", "Alpha", "0"]) {
			expect(sortedLinesInclude(text, word)).toBe(false);
		}
		expect(sortedLinesInclude("", "alpha")).toBe(false);
	});

	it("answers as a Set would, for every entry of the shipped list and for words around them", () => {
		const lines = commonPasswordsText.split("\n").filter(Boolean);
		const set = new Set(lines);
		for (const word of lines) expect(sortedLinesInclude(commonPasswordsText, word)).toBe(true);
		for (const word of lines.slice(0, 2_000)) {
			for (const near of [`${word}x`, word.slice(0, -1), `${word} `, word.toUpperCase()]) {
				expect(sortedLinesInclude(commonPasswordsText, near)).toBe(set.has(near));
			}
		}
	});

	it("relies on the shipped list being sorted as JavaScript compares strings, one entry per line", () => {
		const lines = commonPasswordsText.split("\n");
		expect(lines.at(-1)).toBe("");
		const entries = lines.slice(0, -1);
		expect(entries.every((line) => line.length > 0)).toBe(true);
		expect(entries.every((line, i) => i === 0 || (entries[i - 1] as string) < line)).toBe(true);
		expect(countLines(commonPasswordsText)).toBe(entries.length);
	});
});

describe("countLines", () => {
	it("counts lines with and without a final newline", () => {
		expect(countLines("")).toBe(0);
		expect(countLines("a")).toBe(1);
		expect(countLines("a\n")).toBe(1);
		expect(countLines("a\nb")).toBe(2);
		expect(countLines("a\nb\n")).toBe(2);
	});
});
