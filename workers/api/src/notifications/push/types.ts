import type { PushPayload } from "@secureconnect/protocol";

export type { PushPayload };

/** What became of one push to one subscription. */
export type DeliveryOutcome =
	| { status: "sent" }
	/** The push service says the address is gone (404/410/UNREGISTERED): delete the subscription. */
	| { status: "prune"; reason: string }
	/** Worth another try later (timeouts, 429, 5xx); `retryAfterSeconds` from the service when it said. */
	| { status: "retry"; reason: string; retryAfterSeconds?: number }
	/** Refused for good (4xx other than the above): not retried; the job is dead-lettered. */
	| { status: "rejected"; reason: string };

/** Provider answers other than the ones named in the protocol: 429 and 5xx are retried, the rest are final. */
export function retryableStatus(status: number): boolean {
	return status === 429 || status >= 500 || status === 0;
}

export function errorReason(error: unknown): string {
	return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
