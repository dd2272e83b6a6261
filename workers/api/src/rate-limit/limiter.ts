import type { Env } from "../env.ts";
import { ApiError, DependencyUnavailableError } from "../lib/api-error.ts";
import { sha256Hex } from "../lib/crypto.ts";
import { withTimeout } from "../lib/timeout.ts";
import type { RatePolicies, RatePolicyName } from "./policies.ts";
import type { RateDecision } from "./RateLimiter.ts";

const LIMITER_TIMEOUT_MS = 3_000;

/** Talks to the RateLimiter objects; if they cannot answer, the request is refused (fail closed). */
export class Limiter {
	readonly #env: Env;
	readonly #policies: RatePolicies;

	constructor(env: Env, policies: RatePolicies) {
		this.#env = env;
		this.#policies = policies;
	}

	async #stub(name: RatePolicyName, subject: string) {
		// Hash the subject so emails and IPs are not object names in dashboards.
		const key = `${name}:${await sha256Hex(subject.toLowerCase())}`;
		return this.#env.RATE_LIMITER.get(this.#env.RATE_LIMITER.idFromName(key));
	}

	async #call(work: Promise<RateDecision>): Promise<RateDecision> {
		try {
			return await withTimeout("rate limiter", LIMITER_TIMEOUT_MS, work);
		} catch (error) {
			throw new DependencyUnavailableError("rate limiter", error);
		}
	}

	/** Counts an attempt; throws 429 RATE_LIMITED with Retry-After when over the limit. */
	async attempt(name: RatePolicyName, subject: string): Promise<void> {
		const stub = await this.#stub(name, subject);
		const decision = await this.#call(stub.attempt(this.#policies[name]));
		if (!decision.allowed) throw rateLimited(decision.retryAfter);
	}

	/** Counts an attempt and says whether it is within the limit, for callers that must answer the same either way. */
	async permits(name: RatePolicyName, subject: string): Promise<boolean> {
		const stub = await this.#stub(name, subject);
		return (await this.#call(stub.attempt(this.#policies[name]))).allowed;
	}

	/** Throws 423 ACCOUNT_LOCKED while a lockout key is locked. */
	async assertUnlocked(name: RatePolicyName, subject: string): Promise<void> {
		const stub = await this.#stub(name, subject);
		const decision = await this.#call(stub.check());
		if (!decision.allowed) throw locked(decision.retryAfter);
	}

	async fail(name: RatePolicyName, subject: string): Promise<RateDecision> {
		const stub = await this.#stub(name, subject);
		return this.#call(stub.fail(this.#policies[name]));
	}

	async succeed(name: RatePolicyName, subject: string): Promise<void> {
		const stub = await this.#stub(name, subject);
		try {
			await withTimeout("rate limiter", LIMITER_TIMEOUT_MS, stub.succeed());
		} catch (error) {
			throw new DependencyUnavailableError("rate limiter", error);
		}
	}
}

export function rateLimited(retryAfter: number): ApiError {
	return new ApiError(429, "RATE_LIMITED", `Too many attempts; try again in ${retryAfter} s.`, { retryAfter });
}

export function locked(retryAfter: number): ApiError {
	return new ApiError(423, "ACCOUNT_LOCKED", `Too many failed attempts; try again in ${retryAfter} s.`, { retryAfter });
}
