// ICE failures that clients report (signaling `reportIceFailure`): a
// transport's ICE/connection state went `failed` on the client. /metrics
// reports them as secureconnect_client_ice_failures_total{relay="true"|"false"},
// `relay` being whether the client had TURN servers to use, so failures
// through TURN (a TURN problem) are told apart from STUN/host-only ones.
const counts = { relay: 0, direct: 0 };

export function recordClientIceFailure(relay: boolean): void {
	if (relay) counts.relay++;
	else counts.direct++;
}

export function clientIceFailures(): { relay: number; direct: number } {
	return { ...counts };
}
