import { z } from "zod";

/**
 * A throttle allows `limit` attempts per `windowSeconds`; going over blocks the
 * key for `penaltySeconds`, doubling with each repeat up to `maxPenaltySeconds`.
 * A lockout (accounts) counts failures instead: after `limit` consecutive
 * failures the key is locked, doubling likewise. Success resets a lockout.
 */
export const RatePolicy = z.object({
	kind: z.enum(["throttle", "lockout"]),
	limit: z.number().int().positive(),
	windowSeconds: z.number().int().positive(),
	penaltySeconds: z.number().int().positive(),
	maxPenaltySeconds: z.number().int().positive(),
});
export type RatePolicy = z.infer<typeof RatePolicy>;

export const DEFAULT_RATE_POLICIES = {
	"login-ip": { kind: "throttle", limit: 20, windowSeconds: 60, penaltySeconds: 60, maxPenaltySeconds: 3_600 },
	"login-account": { kind: "lockout", limit: 5, windowSeconds: 900, penaltySeconds: 30, maxPenaltySeconds: 3_600 },
	"register-ip": { kind: "throttle", limit: 10, windowSeconds: 3_600, penaltySeconds: 600, maxPenaltySeconds: 86_400 },
	"forgot-ip": { kind: "throttle", limit: 10, windowSeconds: 3_600, penaltySeconds: 600, maxPenaltySeconds: 86_400 },
	"forgot-account": {
		kind: "throttle",
		limit: 3,
		windowSeconds: 3_600,
		penaltySeconds: 600,
		maxPenaltySeconds: 86_400,
	},
	"token-ip": { kind: "throttle", limit: 20, windowSeconds: 600, penaltySeconds: 300, maxPenaltySeconds: 86_400 },
	"refresh-ip": { kind: "throttle", limit: 120, windowSeconds: 60, penaltySeconds: 60, maxPenaltySeconds: 3_600 },
	"password-change": { kind: "lockout", limit: 5, windowSeconds: 900, penaltySeconds: 60, maxPenaltySeconds: 3_600 },
} as const satisfies Record<string, RatePolicy>;

export type RatePolicyName = keyof typeof DEFAULT_RATE_POLICIES;
export type RatePolicies = Record<RatePolicyName, RatePolicy>;

const Overrides = z.record(z.string(), RatePolicy.partial());

/** RATE_LIMITS (JSON) overrides single fields of named policies, e.g. looser IP throttles in dev. */
export function ratePolicies(overrides: string | undefined): RatePolicies {
	const policies = structuredClone(DEFAULT_RATE_POLICIES) as RatePolicies;
	if (!overrides) return policies;
	const parsed = Overrides.parse(JSON.parse(overrides));
	for (const [name, override] of Object.entries(parsed)) {
		if (!(name in policies)) throw new Error(`unknown rate policy "${name}"`);
		const key = name as RatePolicyName;
		policies[key] = RatePolicy.parse({ ...policies[key], ...override });
	}
	return policies;
}
