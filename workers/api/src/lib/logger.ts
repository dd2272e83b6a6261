// Structured JSON logs, one object per line. Fields whose names suggest a
// credential or a ciphertext are replaced, so a careless call cannot leak one.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const REDACTED_KEY =
	/pass(word)?|secret|token|authorization|cookie|ciphertext|private|pepper|credential|^key$|signature/i;

function redact(value: unknown, depth = 0): unknown {
	if (depth > 4 || value === null || typeof value !== "object") return value;
	if (value instanceof Error) return { name: value.name, message: value.message };
	if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(value)) {
		out[k] = REDACTED_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
	}
	return out;
}

export class Logger {
	readonly #base: LogFields;

	constructor(base: LogFields = {}) {
		this.#base = base;
	}

	child(fields: LogFields): Logger {
		return new Logger({ ...this.#base, ...fields });
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
