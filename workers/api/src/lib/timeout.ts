export class TimeoutError extends Error {
	constructor(what: string, ms: number) {
		super(`${what} timed out after ${ms} ms`);
		this.name = "TimeoutError";
	}
}

/** Races a promise against a timer; every outbound call goes through this. */
export async function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	try {
		return await Promise.race([
			work,
			new Promise<never>((_, reject) => {
				timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
			}),
		]);
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}
