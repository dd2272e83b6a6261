// SMTP submission over a Worker TCP socket (cloudflare:sockets): EHLO,
// STARTTLS when offered (or implicit TLS), AUTH PLAIN or LOGIN, then MAIL
// FROM / RCPT TO / DATA per message on one connection, with dot-stuffing and
// a multipart/alternative (text + HTML, quoted-printable) body.
import { connect } from "cloudflare:sockets";
import { withTimeout } from "../../lib/timeout.ts";
import type { SmtpConfig } from "../config.ts";
import { errorReason } from "../push/types.ts";
import { addressOf, type EmailMessage, type EmailOutcome, type EmailProvider } from "./types.ts";

const encoder = new TextEncoder();

export interface SmtpReply {
	code: number;
	lines: string[];
}

export class SmtpError extends Error {
	readonly code: number;
	constructor(step: string, reply: SmtpReply) {
		super(`SMTP ${step} answered ${reply.code} ${reply.lines.join(" ").slice(0, 200)}`);
		this.name = "SmtpError";
		this.code = reply.code;
	}
}

/** One SMTP client session: line-oriented replies over the socket's streams. */
class SmtpSession {
	#socket: Socket;
	#reader: ReadableStreamDefaultReader<Uint8Array>;
	#writer: WritableStreamDefaultWriter<Uint8Array>;
	#decoder = new TextDecoder();
	#buffer = "";
	readonly #timeoutMs: number;
	secure: boolean;

	constructor(socket: Socket, secure: boolean, timeoutMs: number) {
		this.#socket = socket;
		this.#reader = socket.readable.getReader();
		this.#writer = socket.writable.getWriter();
		this.secure = secure;
		this.#timeoutMs = timeoutMs;
	}

	async #line(): Promise<string> {
		for (;;) {
			const end = this.#buffer.indexOf("\n");
			if (end >= 0) {
				const line = this.#buffer.slice(0, end).replace(/\r$/, "");
				this.#buffer = this.#buffer.slice(end + 1);
				return line;
			}
			const { value, done } = await this.#reader.read();
			if (done) throw new Error("SMTP server closed the connection");
			this.#buffer += this.#decoder.decode(value, { stream: true });
			if (this.#buffer.length > 64 * 1024) throw new Error("SMTP reply line too long");
		}
	}

	/** A whole (possibly multi-line "250-…") reply. */
	reply(): Promise<SmtpReply> {
		return withTimeout(
			"SMTP reply",
			this.#timeoutMs,
			(async () => {
				const lines: string[] = [];
				for (;;) {
					const line = await this.#line();
					const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
					if (!m) throw new Error(`malformed SMTP reply: ${line.slice(0, 80)}`);
					lines.push(m[3] ?? "");
					if (m[2] !== "-") return { code: Number(m[1]), lines };
				}
			})(),
		);
	}

	async write(text: string): Promise<void> {
		await withTimeout("SMTP write", this.#timeoutMs, this.#writer.write(encoder.encode(text)));
	}

	/** Sends one command line and checks the reply's code. */
	async command(line: string, expect: number[], step = line.split(" ")[0] ?? line): Promise<SmtpReply> {
		await this.write(`${line}\r\n`);
		const reply = await this.reply();
		if (!expect.includes(reply.code)) throw new SmtpError(step, reply);
		return reply;
	}

	/** RFC 3207: after 220 the conversation restarts on the TLS socket; nothing read before it counts. */
	startTls(hostname: string): void {
		this.#reader.releaseLock();
		this.#writer.releaseLock();
		this.#socket = this.#socket.startTls({ expectedServerHostname: hostname });
		this.#reader = this.#socket.readable.getReader();
		this.#writer = this.#socket.writable.getWriter();
		this.#buffer = "";
		this.secure = true;
	}

	async close(): Promise<void> {
		await this.#socket.close().catch(() => {});
	}
}

function capabilities(reply: SmtpReply): Map<string, string> {
	const caps = new Map<string, string>();
	for (const line of reply.lines.slice(1)) {
		const [name, ...rest] = line.trim().split(/\s+/);
		if (name) caps.set(name.toUpperCase(), rest.join(" ").toUpperCase());
	}
	return caps;
}

const b64 = (s: string) => {
	let binary = "";
	for (const b of encoder.encode(s)) binary += String.fromCharCode(b);
	return btoa(binary);
};

/** Quoted-printable (RFC 2045 §6.7) with CRLF line ends and soft breaks at 76 characters. */
export function quotedPrintable(text: string): string {
	const out: string[] = [];
	for (const line of text.split(/\r?\n/)) {
		const bytes = encoder.encode(line);
		const tokens: string[] = [];
		bytes.forEach((b, i) => {
			const last = i === bytes.length - 1;
			const literal = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !last);
			tokens.push(literal ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, "0")}`);
		});
		let current = "";
		for (const token of tokens) {
			if (current.length + token.length > 75) {
				out.push(`${current}=`);
				current = "";
			}
			current += token;
		}
		out.push(current);
	}
	return out.join("\r\n");
}

/** RFC 2047 encoded-words for a header value that is not plain ASCII. */
export function encodeHeader(value: string): string {
	const clean = value.replace(/[\r\n]+/g, " ");
	if (/^[\x20-\x7e]*$/.test(clean)) return clean;
	const words: string[] = [];
	let chunk = "";
	for (const ch of clean) {
		if (encoder.encode(chunk + ch).length > 45) {
			words.push(chunk);
			chunk = "";
		}
		chunk += ch;
	}
	if (chunk) words.push(chunk);
	return words.map((w) => `=?UTF-8?B?${b64(w)}?=`).join("\r\n ");
}

/** The DATA payload: headers, a multipart/alternative body, dot-stuffed, ending in CRLF "." CRLF. */
export function mimeMessage(message: EmailMessage, now = new Date()): string {
	const domain = addressOf(message.from).split("@")[1] ?? "localhost";
	const boundary = `sc-${crypto.randomUUID()}`;
	const header = (name: string, value: string) => `${name}: ${value.replace(/[\r\n]+/g, " ")}`;
	const part = (type: string, body: string) =>
		[
			`--${boundary}`,
			`Content-Type: ${type}; charset=utf-8`,
			"Content-Transfer-Encoding: quoted-printable",
			"",
			quotedPrintable(body),
		].join("\r\n");
	const text = [
		header("From", message.from),
		header("To", message.to),
		`Subject: ${encodeHeader(message.subject)}`,
		header("Date", now.toUTCString().replace(/GMT$/, "+0000")),
		header("Message-ID", `<${message.id}@${domain}>`),
		"MIME-Version: 1.0",
		`Content-Type: multipart/alternative; boundary="${boundary}"`,
		"",
		part("text/plain", message.text),
		part("text/html", message.html),
		`--${boundary}--`,
		"",
	].join("\r\n");
	// RFC 5321 §4.5.2: a line that starts with "." gets one more.
	return `${text.replace(/(^|\r\n)\./g, "$1..")}.\r\n`;
}

export class SmtpProvider implements EmailProvider {
	readonly name = "smtp";
	readonly #config: SmtpConfig;
	readonly #timeoutMs: number;
	readonly #heloName: string;

	constructor(config: SmtpConfig, timeoutMs: number, heloName = "localhost") {
		this.#config = config;
		this.#timeoutMs = timeoutMs;
		this.#heloName = heloName;
	}

	async #open(): Promise<SmtpSession> {
		const { host, port, tls } = this.#config;
		const socket = connect(
			{ hostname: host, port },
			{ secureTransport: tls === "implicit" ? "on" : tls === "starttls" ? "starttls" : "off", allowHalfOpen: false },
		);
		const session = new SmtpSession(socket, tls === "implicit", this.#timeoutMs);
		try {
			await withTimeout("SMTP connect", this.#timeoutMs, socket.opened);
			const greeting = await session.reply();
			if (greeting.code !== 220) throw new SmtpError("greeting", greeting);
			let caps = capabilities(await session.command(`EHLO ${this.#heloName}`, [250]));
			if (tls === "starttls" && caps.has("STARTTLS")) {
				await session.command("STARTTLS", [220]);
				session.startTls(host);
				caps = capabilities(await session.command(`EHLO ${this.#heloName}`, [250]));
			}
			if (this.#config.requireTls && !session.secure) {
				throw new Error("the SMTP server does not offer STARTTLS; refusing to send in the clear");
			}
			if (this.#config.user) await this.#auth(session, caps.get("AUTH") ?? "");
			return session;
		} catch (error) {
			await session.close();
			throw error;
		}
	}

	async #auth(session: SmtpSession, mechanisms: string): Promise<void> {
		const user = this.#config.user ?? "";
		const password = this.#config.password ?? "";
		const offered = mechanisms.split(/\s+/);
		if (offered.includes("PLAIN")) {
			await session.command(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`, [235], "AUTH PLAIN");
		} else if (offered.includes("LOGIN")) {
			await session.command("AUTH LOGIN", [334], "AUTH LOGIN");
			await session.command(b64(user), [334], "AUTH LOGIN user");
			await session.command(b64(password), [235], "AUTH LOGIN password");
		} else {
			throw new Error("the SMTP server offers neither AUTH PLAIN nor AUTH LOGIN");
		}
	}

	async send(messages: EmailMessage[]): Promise<EmailOutcome[]> {
		let session: SmtpSession;
		try {
			session = await this.#open();
		} catch (error) {
			const reason = errorReason(error);
			return messages.map(() => ({ status: "retry", reason }));
		}
		const outcomes: EmailOutcome[] = [];
		try {
			for (const message of messages) {
				try {
					await session.command(`MAIL FROM:<${addressOf(message.from)}>`, [250], "MAIL FROM");
					await session.command(`RCPT TO:<${addressOf(message.to).replace(/[<>\r\n]/g, "")}>`, [250, 251], "RCPT TO");
					await session.command("DATA", [354]);
					await session.write(mimeMessage(message));
					const done = await session.reply();
					if (done.code !== 250) throw new SmtpError("DATA", done);
					outcomes.push({ status: "sent" });
				} catch (error) {
					const permanent = error instanceof SmtpError && error.code >= 500;
					outcomes.push({ status: permanent ? "rejected" : "retry", reason: errorReason(error) });
					if (!(error instanceof SmtpError)) break; // the connection itself failed
					await session.command("RSET", [250]).catch(() => {});
				}
			}
			await session.command("QUIT", [221]).catch(() => {});
		} finally {
			await session.close();
		}
		// Whatever the broken connection left unsent is tried again later.
		while (outcomes.length < messages.length) {
			outcomes.push({ status: "retry", reason: "SMTP connection lost before this message" });
		}
		return outcomes;
	}
}
