import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "@secureconnect/protocol";
import { ApiError } from "../lib/api-error.ts";
import { countLines, sortedLinesInclude } from "../lib/sorted-lines.ts";
// The most common passwords long enough to pass the length rule (first 20,000
// such entries, lower-cased, of SecLists' "10 million password list top 1M"),
// stored sorted: a lookup is a binary search over the text, so an isolate
// holds no set of 20,000 strings for the rest of its life.
import commonPasswordsText from "./common-passwords.txt";

export function commonPasswordCount(): number {
	return countLines(commonPasswordsText);
}

/** Throws a 400 WEAK_PASSWORD naming the rule the password breaks. */
export function assertPasswordAcceptable(password: string, context: { email?: string; handle?: string } = {}): void {
	const length = [...password].length;
	if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
		throw new ApiError(
			400,
			"WEAK_PASSWORD",
			`The password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long.`,
		);
	}
	const lower = password.toLowerCase();
	if (sortedLinesInclude(commonPasswordsText, lower)) {
		throw new ApiError(400, "WEAK_PASSWORD", "This password is among the most common ones; choose another.");
	}
	const personal = [
		context.email?.toLowerCase(),
		context.email?.split("@")[0]?.toLowerCase(),
		context.handle?.toLowerCase(),
	];
	if (personal.some((p) => p && p.length >= 3 && lower.includes(p))) {
		throw new ApiError(400, "WEAK_PASSWORD", "The password must not contain your email or handle.");
	}
	if (new Set(password).size < 4) {
		throw new ApiError(400, "WEAK_PASSWORD", "The password repeats too few different characters.");
	}
}
