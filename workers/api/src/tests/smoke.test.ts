import { describe, expect, it } from "vitest";
import { call, codeIn, login, mailbox, register } from "./helpers.ts";

describe("smoke", () => {
	it("registers, verifies, logs in, reads me", async () => {
		const user = await register();
		const mails = await mailbox(user.email);
		expect(mails[0]?.template).toBe("verify_email");
		const v = await call("/v1/auth/verify-email", { body: { token: codeIn(mails[0]?.text ?? "") } });
		expect(v.status).toBe(204);
		const s = await login(user);
		const me = await call<{ user: { emailVerified: boolean } }>("/v1/users/me", { token: s.accessToken });
		expect(me.status).toBe(200);
		expect(me.body.user.emailVerified).toBe(true);
	});
});
