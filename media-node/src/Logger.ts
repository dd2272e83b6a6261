// Structured JSON logger: one JSON object per line on stdout, with at least
// `level`, `time` and `msg`, plus any bound fields (e.g. `requestId`) and
// per-call fields.

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

/** Receives one complete line (JSON + "\n"). */
export type LogSink = (line: string) => void;

export type LoggerOptions = {
	level?: LogLevel;
	sink?: LogSink;
	bindings?: LogFields;
};

const DEFAULT_LEVEL: LogLevel = "info";

const LEVEL_RANK: Record<LogLevel, number> = {
	debug: 10,
	info: 20,
	warn: 30,
	error: 40,
};

const RESERVED_KEYS = new Set(["level", "time", "msg"]);

const stdoutSink: LogSink = (line) => {
	process.stdout.write(line);
};

function serializeValue(_key: string, value: unknown): unknown {
	if (value instanceof Error) {
		const out: Record<string, unknown> = { name: value.name, message: value.message };

		if (value.stack !== undefined) {
			out.stack = value.stack;
		}
		if (value.cause !== undefined) {
			out.cause = value.cause;
		}

		return out;
	}

	if (typeof value === "bigint") {
		return value.toString();
	}

	return value;
}

export class Logger {
	#level: LogLevel;
	#sink: LogSink;
	#bindings: LogFields;

	static create(options: LoggerOptions = {}): Logger {
		return new Logger(options.level ?? DEFAULT_LEVEL, options.sink ?? stdoutSink, options.bindings ?? {});
	}

	private constructor(level: LogLevel, sink: LogSink, bindings: LogFields) {
		this.#level = level;
		this.#sink = sink;
		this.#bindings = bindings;
	}

	get level(): LogLevel {
		return this.#level;
	}

	/** A logger that adds `bindings` to every line it writes. */
	child(bindings: LogFields): Logger {
		return new Logger(this.#level, this.#sink, { ...this.#bindings, ...bindings });
	}

	isLevelEnabled(level: LogLevel): boolean {
		return LEVEL_RANK[level] >= LEVEL_RANK[this.#level];
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

	#write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
		if (!this.isLevelEnabled(level)) {
			return;
		}

		const record: Record<string, unknown> = { level, time: new Date().toISOString(), msg };

		for (const [key, value] of Object.entries({ ...this.#bindings, ...fields })) {
			if (!RESERVED_KEYS.has(key)) {
				record[key] = value;
			}
		}

		let line: string;

		try {
			line = JSON.stringify(record, serializeValue);
		} catch (error) {
			// e.g. a circular structure in a field: keep the line, drop the fields.
			line = JSON.stringify({
				level,
				time: record.time,
				msg,
				logError: error instanceof Error ? error.message : String(error),
			});
		}

		this.#sink(`${line}\n`);
	}
}
