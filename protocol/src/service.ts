import { z } from "zod";

export const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });
export type Health = z.infer<typeof Health>;

export const CheckState = z.enum(["ok", "failing", "not_configured"]);
export type CheckState = z.infer<typeof CheckState>;

export const Readiness = z
	.object({
		status: z.enum(["ready", "not_ready"]),
		checks: z.record(z.string(), CheckState),
	})
	.meta({ id: "Readiness" });
export type Readiness = z.infer<typeof Readiness>;

export const Jwks = z
	.object({
		keys: z.array(z.looseObject({ kty: z.string(), kid: z.string(), alg: z.string(), use: z.string() })),
	})
	.meta({ id: "JWKS" });
export type Jwks = z.infer<typeof Jwks>;
