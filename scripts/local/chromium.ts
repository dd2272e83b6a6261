// Debian's Chromium for the browser tests, installed when missing, with the
// flags /work/shared/TOOLCHAIN.md records (fake media, loopback ICE, no network chatter).
import { existsSync } from "node:fs";
import { aptInstall } from "./apt.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Playwright adds --headless and the fresh --user-data-dir itself. */
export const CHROMIUM_FLAGS = [
	"--no-sandbox",
	"--disable-gpu",
	"--use-fake-ui-for-media-stream",
	"--use-fake-device-for-media-stream",
	"--allow-loopback-in-peer-connection",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--no-first-run",
];

export function ensureChromium(log: (line: string) => void = () => {}): void {
	if (!existsSync(CHROMIUM)) aptInstall(["chromium"], log);
	if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is still missing after apt-get install chromium`);
}
