// `npm run setup:coturn`: installs Debian's coturn (turnserver) when it is missing.
// Nothing starts it as a service: `npm run dev` and the call tests run their own
// loopback instance (scripts/local/coturn.ts).
import { aptInstall } from "./apt.ts";
import { findTurnserver } from "./coturn.ts";

/** The turnserver binary, installing coturn first if needed. */
export function ensureCoturn(log: (line: string) => void = () => {}): string {
	const found = findTurnserver();
	if (found) return found;
	aptInstall(["coturn"], log);
	const installed = findTurnserver();
	if (!installed) throw new Error("coturn was installed but turnserver is still not on PATH");
	return installed;
}

if (import.meta.main) {
	const before = findTurnserver();
	const binary = ensureCoturn((line) => process.stdout.write(`[setup:coturn] ${line}\n`));
	process.stdout.write(`[setup:coturn] ${before ? "already installed" : "installed"}: ${binary}\n`);
}
