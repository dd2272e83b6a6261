// Structured JSON logs, one object per line. Fields whose names suggest a
// credential or a ciphertext are replaced, so a careless call cannot leak one.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const REDACTED_KEY =
	/pass(word)?|secret|token|authorization|cookie|ciphertext|private|pepper|credential|^key$|signature/i;

function redact(value: unknown, depth = 0): unknown {
	if (value === null || typeof value !== "object") return value;
	if (value instanceof Error || ("message" in value && "stack" in value)) {
		const e = value as Error;
		return { name: e.name, message: e.message };
	}
	if (depth > 3) return "[object]";
	if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(value)) {
		out[k] = REDACTED_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
	}
	return out;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function parseLevel(value: string | undefined): LogLevel {
	return value && value in RANK ? (value as LogLevel) : "info";
}

export class Logger {
	readonly #base: LogFields;
	readonly #level: LogLevel;

	constructor(base: LogFields = {}, level: LogLevel = "info") {
		this.#base = base;
		this.#level = level;
	}

	child(fields: LogFields, level: LogLevel = this.#level): Logger {
		return new Logger({ ...this.#base, ...fields }, level);
	}

	debug(msg: string, fields?: LogFields): void {
		this.#write("debug", msg, fields);
	}
	info(msg: string, fields?: LogFields): void {
		this.#write("info", msg, fields);
	}
	warn(msg: string, fields?: LogFields): void {
		this.#write("warn", msg, fields);
	}
	error(msg: string, fields?: LogFields): void {
		this.#write("error", msg, fields);
	}

	#write(level: LogLevel, msg: string, fields?: LogFields): void {
		if (RANK[level] < RANK[this.#level]) return;
		const line = JSON.stringify({
			time: new Date().toISOString(),
			level,
			msg,
			...(redact({ ...this.#base, ...fields }) as LogFields),
		});
		if (level === "error") console.error(line);
		else if (level === "warn") console.warn(line);
		else console.log(line);
	}
}

export const rootLogger = new Logger({ service: "api" });
