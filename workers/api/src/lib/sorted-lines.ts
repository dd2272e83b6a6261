/**
 * Whether `word` is one of the lines of `sorted`, a newline-separated text
 * whose lines are in ascending order as JavaScript compares strings. A binary
 * search over the text itself: no list or set is built, so a long word list
 * costs one string in memory and nothing to set up.
 */
export function sortedLinesInclude(sorted: string, word: string): boolean {
	// [lo, hi) always spans whole lines: both are line starts (or past the end).
	let lo = 0;
	let hi = sorted.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		const start = sorted.lastIndexOf("\n", mid - 1) + 1;
		const newline = sorted.indexOf("\n", start);
		const end = newline === -1 ? sorted.length : newline;
		const line = sorted.slice(start, end);
		if (line === word) return true;
		if (line < word) lo = end + 1;
		else hi = start;
	}
	return false;
}

/** The lines of a text, without the empty one after a final newline. */
export function countLines(text: string): number {
	let count = 0;
	for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) count++;
	return text.length > 0 && !text.endsWith("\n") ? count + 1 : count;
}
