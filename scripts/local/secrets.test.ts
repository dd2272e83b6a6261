import { createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureDevVars } from "./secrets.ts";

describe(".dev.vars generation", () => {
	it("creates every secret, strong and private to the owner", () => {
		const path = join(mkdtempSync(join(tmpdir(), "sc-secrets-")), ".dev.vars");
		const vars = ensureDevVars(path);
		expect(statSync(path).mode & 0o777).toBe(0o600);
		for (const name of ["PASSWORD_PEPPER", "MEDIA_NODE_SECRET", "TURN_SECRET"]) {
			expect(vars.get(name)?.length).toBeGreaterThanOrEqual(64);
		}
		const keys = JSON.parse(vars.get("JWT_SIGNING_KEYS") ?? "[]") as Array<Record<string, string>>;
		expect(keys).toHaveLength(1);
		const key = createPrivateKey({ key: keys[0] as never, format: "jwk" });
		expect(key.asymmetricKeyType).toBe("ed25519");
		expect(readFileSync(path, "utf8")).toContain("Never commit");
	});

	it("keeps existing values and fills in only what is missing", () => {
		const path = join(mkdtempSync(join(tmpdir(), "sc-secrets-")), ".dev.vars");
		writeFileSync(path, "PASSWORD_PEPPER='kept-value-kept-value-kept-value-kept'\n");
		const first = ensureDevVars(path);
		expect(first.get("PASSWORD_PEPPER")).toBe("kept-value-kept-value-kept-value-kept");
		const second = ensureDevVars(path);
		expect(second.get("MEDIA_NODE_SECRET")).toBe(first.get("MEDIA_NODE_SECRET"));
		expect(second.get("JWT_SIGNING_KEYS")).toBe(first.get("JWT_SIGNING_KEYS"));
	});

	it("generates different secrets on different machines", () => {
		const dir = mkdtempSync(join(tmpdir(), "sc-secrets-"));
		const a = ensureDevVars(join(dir, "a"));
		const b = ensureDevVars(join(dir, "b"));
		expect(a.get("PASSWORD_PEPPER")).not.toBe(b.get("PASSWORD_PEPPER"));
	});
});
