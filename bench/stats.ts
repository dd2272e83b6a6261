export function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[index] as number;
}

export function summarize(samples: number[]): { p50: number; p99: number; n: number } {
	const sorted = [...samples].sort((a, b) => a - b);
	return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), n: sorted.length };
}

export function round(value: number, digits = 2): number {
	const f = 10 ** digits;
	return Math.round(value * f) / f;
}

/** Runs `work` with `concurrency` callers until `total` calls are done; returns each call's latency in ms. */
export async function loadTest(total: number, concurrency: number, work: () => Promise<void>): Promise<number[]> {
	const latencies: number[] = [];
	let started = 0;
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (started < total) {
				started++;
				const t0 = performance.now();
				await work();
				latencies.push(performance.now() - t0);
			}
		}),
	);
	return latencies;
}
