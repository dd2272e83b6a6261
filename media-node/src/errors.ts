// The one error type of the signaling layer: a code from the protocol's list,
// a message safe to show the client, and (when the socket must go) a close code.
// And the TURN probe's failure, with its reason.

import type { TURN_PROBE_FAILURE_REASONS } from "../../protocol/src/calls.ts";
import type { RtcErrorCode } from "../../protocol/src/signaling.ts";

export type TurnFailureReason = (typeof TURN_PROBE_FAILURE_REASONS)[number];

export class RtcError extends Error {
	readonly code: RtcErrorCode;
	/** Close the socket with this code after sending the error. */
	readonly closeCode: number | undefined;

	constructor(code: RtcErrorCode, message: string, closeCode?: number) {
		super(message);
		this.name = "RtcError";
		this.code = code;
		this.closeCode = closeCode;
	}
}

/** Why a TURN probe failed: a bounded reason (a metric label) and a message for the logs. */
export class TurnError extends Error {
	readonly reason: TurnFailureReason;

	constructor(reason: TurnFailureReason, message: string) {
		super(message);
		this.name = "TurnError";
		this.reason = reason;
	}
}
