import { DurableObject } from "cloudflare:workers";
import type { RatePolicy } from "./policies.ts";

export interface RateDecision {
	allowed: boolean;
	/** Seconds until the key may try again; 0 when allowed. */
	retryAfter: number;
}

interface State {
	windowStart: number;
	count: number;
	strikes: number;
	blockedUntil: number;
}

const EMPTY: State = { windowStart: 0, count: 0, strikes: 0, blockedUntil: 0 };
const STATE_KEY = "state";

/**
 * One object per limited key (an IP, an account): counters that hold across
 * isolates and locations, which isolate memory never could.
 */
export class RateLimiter extends DurableObject {
	#state: State | undefined;

	#load(): State {
		this.#state ??= this.ctx.storage.kv.get<State>(STATE_KEY) ?? { ...EMPTY };
		return this.#state;
	}

	#save(state: State, policy: RatePolicy, now: number): void {
		this.#state = state;
		this.ctx.storage.kv.put(STATE_KEY, state);
		// Forget the key once nothing about it matters any more.
		const forgetAt =
			Math.max(state.blockedUntil, state.windowStart + policy.windowSeconds * 1000) + policy.maxPenaltySeconds * 1000;
		void this.ctx.storage.setAlarm(Math.max(forgetAt, now + 1000));
	}

	#penalty(policy: RatePolicy, strikes: number): number {
		return Math.min(policy.maxPenaltySeconds, policy.penaltySeconds * 2 ** Math.max(0, strikes - 1)) * 1000;
	}

	#blocked(state: State, now: number): RateDecision | undefined {
		if (state.blockedUntil > now) return { allowed: false, retryAfter: Math.ceil((state.blockedUntil - now) / 1000) };
		return undefined;
	}

	/** Is the key blocked right now? Counts nothing. */
	async check(): Promise<RateDecision> {
		return this.#blocked(this.#load(), Date.now()) ?? { allowed: true, retryAfter: 0 };
	}

	/** Throttle: count one attempt. */
	async attempt(policy: RatePolicy): Promise<RateDecision> {
		const now = Date.now();
		const state = { ...this.#load() };
		const blocked = this.#blocked(state, now);
		if (blocked) return blocked;
		if (now - state.windowStart >= policy.windowSeconds * 1000) {
			state.windowStart = now;
			state.count = 0;
		}
		state.count++;
		if (state.count > policy.limit) {
			state.strikes++;
			state.blockedUntil = now + this.#penalty(policy, state.strikes);
			state.count = 0;
			state.windowStart = now;
			this.#save(state, policy, now);
			return { allowed: false, retryAfter: Math.ceil((state.blockedUntil - now) / 1000) };
		}
		this.#save(state, policy, now);
		return { allowed: true, retryAfter: 0 };
	}

	/** Lockout: one more failure; returns whether the key is now locked. */
	async fail(policy: RatePolicy): Promise<RateDecision> {
		const now = Date.now();
		const state = { ...this.#load() };
		if (now - state.windowStart >= policy.windowSeconds * 1000 && state.blockedUntil <= now) {
			state.windowStart = now;
			state.count = 0;
		}
		state.count++;
		if (state.count >= policy.limit) {
			state.strikes++;
			state.blockedUntil = now + this.#penalty(policy, state.strikes);
			state.count = 0;
		}
		this.#save(state, policy, now);
		return this.#blocked(state, now) ?? { allowed: true, retryAfter: 0 };
	}

	/** Lockout: a success clears the failures (not a running lock). */
	async succeed(): Promise<void> {
		const state = this.#load();
		if (state.count === 0 && state.strikes === 0) return;
		this.#state = { ...state, count: 0, strikes: 0 };
		this.ctx.storage.kv.put(STATE_KEY, this.#state);
	}

	override async alarm(): Promise<void> {
		const state = this.#load();
		if (state.blockedUntil > Date.now()) return;
		this.#state = undefined;
		await this.ctx.storage.deleteAll();
	}
}
