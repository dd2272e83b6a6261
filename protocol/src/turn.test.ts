import { describe, expect, it } from "vitest";

import { parseTurnUrl, turnUrlKey } from "./turn.ts";

describe("TURN URLs (RFC 7065)", () => {
	it("parses host, port and transport, with the defaults of turn: and turns:", () => {
		expect(parseTurnUrl("turn:turn.example.com")).toEqual({
			secure: false,
			host: "turn.example.com",
			port: 3478,
			transport: "udp",
		});
		expect(parseTurnUrl("turn:10.0.0.1:3479?transport=tcp")).toEqual({
			secure: false,
			host: "10.0.0.1",
			port: 3479,
			transport: "tcp",
		});
		expect(parseTurnUrl("turns:Turn.Example.com")).toEqual({
			secure: true,
			host: "turn.example.com",
			port: 5349,
			transport: "tcp",
		});
		expect(parseTurnUrl("turn:[2001:db8::1]:3478?transport=udp")).toMatchObject({ host: "2001:db8::1", port: 3478 });
	});

	it("refuses what is not a TURN URL a browser can use", () => {
		for (const url of [
			"stun:turn.example.com:3478",
			"turn:",
			"turn://turn.example.com",
			"turn:user@turn.example.com",
			"turn:turn.example.com:0",
			"turn:turn.example.com:70000",
			"turn:turn.example.com?transport=sctp",
			"turns:turn.example.com?transport=udp",
			"http://turn.example.com",
		]) {
			expect(parseTurnUrl(url), url).toBeUndefined();
		}
	});

	it("gives one key per server and transport, whatever the spelling", () => {
		expect(turnUrlKey("turn:HOST.example.com")).toBe("turn:host.example.com:3478?transport=udp");
		expect(turnUrlKey("turn:host.example.com:3478?transport=udp")).toBe(turnUrlKey("turn:host.example.com"));
		expect(turnUrlKey("turn:host.example.com?transport=tcp")).not.toBe(turnUrlKey("turn:host.example.com"));
		expect(turnUrlKey("turns:host.example.com:5349?transport=tcp")).toBe(turnUrlKey("turns:host.example.com"));
		expect(turnUrlKey("turn:[::1]")).toBe("turn:[::1]:3478?transport=udp");
		expect(turnUrlKey("stun:host.example.com")).toBeUndefined();
	});
});
