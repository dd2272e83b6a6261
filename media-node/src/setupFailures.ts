// Calls that failed to set up on this node after admission (transport-level
// failures). Socket refusals are counted by the signaling server; /metrics
// reports both as secureconnect_media_call_setup_failures_total{reason}.
const counts = new Map<string, number>();

export function recordSetupFailure(reason: string): void {
	counts.set(reason, (counts.get(reason) ?? 0) + 1);
}

export function setupFailures(): ReadonlyMap<string, number> {
	return counts;
}
