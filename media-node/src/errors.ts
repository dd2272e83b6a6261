// The one error type of the signaling layer: a code from the protocol's list,
// a message safe to show the client, and (when the socket must go) a close code.

import type { RtcErrorCode } from "../../protocol/src/signaling.ts";

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
