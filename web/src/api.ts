// Talking to the api: one SDK client per signed-in tab, plus an anonymous one
// for the pages before sign-in (sign up, email links, password reset).
import { SecureConnectClient, SecureConnectError } from "../../sdk/src/index.ts";

let anonymous: Promise<SecureConnectClient> | undefined;

/** A client with no session, for the public account endpoints. */
export function publicClient(): Promise<SecureConnectClient> {
	anonymous ??= SecureConnectClient.create({ baseUrl: location.origin });
	return anonymous;
}

/** What to tell a person about a failed request. */
export function describeError(error: unknown): string {
	if (error instanceof SecureConnectError) {
		switch (error.code) {
			case "INVALID_CREDENTIALS":
				return "The email or password is wrong.";
			case "ACCOUNT_LOCKED":
				return "Too many failed attempts: this account is locked for a while. Try again later or reset your password.";
			case "RATE_LIMITED":
				return "Too many attempts. Wait a moment and try again.";
			case "EMAIL_TAKEN":
				return "An account with this email already exists. Sign in instead?";
			case "HANDLE_TAKEN":
				return "This handle is taken. Try another one.";
			case "SERVICE_UNAVAILABLE":
				return "The service is unavailable right now. Try again in a moment.";
			case "BLOCKED":
				return "You can't do this: one of you has blocked the other.";
			case "QUOTA_EXCEEDED":
				return "Your storage is full. Delete some files first.";
			default:
				return error.message;
		}
	}
	if (error instanceof TypeError) return "Can't reach the server. Check your connection and try again.";
	return error instanceof Error ? error.message : String(error);
}

/** The field a VALIDATION_FAILED answer names, if any. */
export function invalidField(error: unknown): string | undefined {
	if (!(error instanceof SecureConnectError) || error.code !== "VALIDATION_FAILED") return undefined;
	const issues = (error.details as { issues?: Array<{ path: string }> } | undefined)?.issues;
	return issues?.[0]?.path;
}

export { SecureConnectError };
