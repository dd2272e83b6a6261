import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "@secureconnect/protocol";
import { ApiError } from "../lib/api-error.ts";
// The most common passwords long enough to pass the length rule (first 20,000
// such entries, lower-cased, of SecLists' "10 million password list top 1M").
import commonPasswordsText from "./common-passwords.txt";

let common: Set<string> | undefined;
function commonPasswords(): Set<string> {
	common ??= new Set(commonPasswordsText.split("\n").filter(Boolean));
	return common;
}

export function commonPasswordCount(): number {
	return commonPasswords().size;
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
	if (commonPasswords().has(lower)) {
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
