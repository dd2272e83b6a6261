// Installs Debian packages for local tools (coturn, chromium): as root, or via
// password-less sudo; refreshes the package lists once if the first try fails.
import { spawnSync } from "node:child_process";

export class AptError extends Error {
	override name = "AptError";
}

function aptPrefix(packages: string[]): string[] {
	if (process.getuid?.() === 0) return [];
	if (spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0) return ["sudo", "-n"];
	throw new AptError(`not root and no password-less sudo: run \`apt-get install -y ${packages.join(" ")}\` as root`);
}

/** `apt-get install -y --no-install-recommends <packages>`; throws when it cannot. */
export function aptInstall(packages: string[], log: (line: string) => void = () => {}): void {
	const prefix = aptPrefix(packages);
	const aptGet = (args: string[]) => {
		const [command, ...rest] = [...prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", ...args];
		return spawnSync(command ?? "env", rest, { stdio: ["ignore", "ignore", "inherit"] }).status === 0;
	};
	const install = ["install", "-y", "--no-install-recommends", ...packages];
	log(`apt-get install ${packages.join(" ")}`);
	if (aptGet(install)) return;
	log("apt-get install failed; refreshing the package lists and retrying");
	if (!aptGet(["update"]) || !aptGet(install)) throw new AptError(`apt-get install ${packages.join(" ")} failed`);
}
