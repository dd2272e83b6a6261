#!/usr/bin/env node
// Resolves a working mediasoup-worker binary and prints ONLY its absolute path
// on stdout (everything else goes to stderr).
//
// Usage: node media-node/scripts/ensure-worker.mjs
//
// Why: mediasoup's own npm installer downloads a prebuilt worker from GitHub
// and, failing that, builds one with pip + meson wraps that are downloaded
// from GitHub too. Machines without GitHub access (ours) cannot do either, so
// this script finds or produces the binary first; install.mjs then installs
// mediasoup with MEDIASOUP_WORKER_BIN pointing at it.
//
// Resolution order:
//   a. $MEDIASOUP_WORKER_BIN, if set and executable;
//   b. a cached binary under
//      ${XDG_CACHE_HOME:-~/.cache}/secureconnect/mediasoup-worker/
//        <version>-<recipeHash>/mediasoup-worker   (offline build), or
//        <version>-prebuilt-<platform>-<arch>/mediasoup-worker (official one)
//      reused only if `ldd` finds all its libraries and it starts;
//   c. the official prebuilt binary from mediasoup's GitHub releases, fetched
//      the way mediasoup's installer does it (15 s timeout; skipped when
//      MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD is set);
//   d. an offline build from the npm tarball's sources against Debian
//      packages, with the local meson subprojects and shims kept in
//      ./mediasoup-offline/ (read the comments there for the why of each).
//
// Node >= 20, builtins only: it runs before any dependency is installed.
//
// Environment knobs:
//   MEDIASOUP_WORKER_BIN                         use this binary
//   MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD      skip step c
//   MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL  mirror for step c
//   MEDIASOUP_BUILD_JOBS                         ninja -j (default: CPU count)
//   MEDIASOUP_KEEP_BUILD_DIR                     keep the temp build tree

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const SCRIPT_PATH = fileURLToPath(import.meta.url);
const SCRIPTS_DIR = path.dirname(SCRIPT_PATH);
const MEDIA_NODE_DIR = path.dirname(SCRIPTS_DIR);
const RECIPE_DIR = path.join(SCRIPTS_DIR, "mediasoup-offline");
const PACKAGE_JSON_PATH = path.join(MEDIA_NODE_DIR, "package.json");

const WORKER_BIN_NAME = "mediasoup-worker";
const PREBUILT_TIMEOUT_MS = 15_000;
const PREBUILT_BASE_URL = "https://github.com/versatica/mediasoup/releases/download";
// mediasoup-worker exits with this code when started without the
// MEDIASOUP_VERSION env var: proof that the binary loads and runs here.
const WORKER_NO_VERSION_EXIT_CODE = 41;
const WORKER_PROBE_TIMEOUT_MS = 10_000;

// Debian bookworm packages the offline build needs (see TOOLCHAIN.md).
const APT_PACKAGES = [
	"g++",
	"make",
	"pkg-config",
	"python3",
	"meson",
	"ninja-build",
	"libuv1-dev",
	"libssl-dev",
	"libsrtp2-dev",
	"libabsl-dev",
	"libflatbuffers-dev",
	"flatbuffers-compiler",
];

// Source edits applied to the npm tarball, each [file, from, to, why].
// They must apply exactly; a new mediasoup version needs a reviewed recipe.
const SOURCE_PATCHES = [
	[
		"worker/meson.build",
		"meson_version: '>= 1.1.0'",
		"meson_version: '>= 1.0.0'",
		"Debian bookworm ships meson 1.0.1; the worker builds identically with it.",
	],
	[
		"worker/src/RTC/DtlsTransport.cpp",
		"(operationType == BIO_CB_RETURN)",
		"(operationType & BIO_CB_RETURN)",
		"OpenSSL calls the BIO callback after each operation with " +
			"BIO_CB_RETURN OR-ed into the operation type. With `==` the callback " +
			"returned 1 instead of the real result for every post-operation " +
			"call, e.g. claiming that kernel TLS is active on BIO ctrl queries; " +
			"with Debian's kTLS-enabled OpenSSL the worker then segfaults at the " +
			"first DTLS ClientHello.",
	],
];

function log(message) {
	process.stderr.write(`[ensure-worker] ${message}\n`);
}

class EnsureWorkerError extends Error {}

function readMediasoupVersion() {
	const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON_PATH, "utf8"));
	const version = pkg.dependencies?.mediasoup;

	if (typeof version !== "string" || !/^\d+\.\d+\.\d+$/.test(version)) {
		throw new EnsureWorkerError(
			`${PACKAGE_JSON_PATH}: dependencies.mediasoup must be an exact version, got ${JSON.stringify(version)}`,
		);
	}

	return version;
}

function listFilesRecursive(dir) {
	const out = [];

	for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
		const full = path.join(dir, entry.name);

		if (entry.isDirectory()) {
			out.push(...listFilesRecursive(full));
		} else if (entry.isFile()) {
			out.push(full);
		}
	}

	return out;
}

// Hash of everything that determines how the worker gets built: this script
// and the files under mediasoup-offline/. Changing any of them yields a new
// cache directory, so a stale build is never reused.
export function computeRecipeHash() {
	const files = [SCRIPT_PATH, ...listFilesRecursive(RECIPE_DIR)]
		.map((file) => path.relative(MEDIA_NODE_DIR, file).split(path.sep).join("/"))
		.sort();
	const hash = createHash("sha256");

	for (const rel of files) {
		hash.update(rel);
		hash.update("\0");
		hash.update(fs.readFileSync(path.join(MEDIA_NODE_DIR, rel)));
		hash.update("\0");
	}

	return hash.digest("hex").slice(0, 16);
}

function cacheRoot() {
	const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");

	return path.join(base, "secureconnect", "mediasoup-worker");
}

function isExecutableFile(file) {
	try {
		if (!fs.statSync(file).isFile()) {
			return false;
		}
		fs.accessSync(file, fs.constants.X_OK);

		return true;
	} catch {
		return false;
	}
}

// Libraries `ldd` cannot resolve, or null when every one is found.
function missingSharedLibraries(bin) {
	const res = spawnSync("ldd", [bin], { encoding: "utf8" });

	if (res.error) {
		// No ldd at all (not glibc): the start probe below still catches it.
		return null;
	}

	const missing = res.stdout
		.split("\n")
		.filter((line) => line.includes("not found"))
		.map((line) => line.trim().split(/\s+/)[0]);

	return missing.length > 0 ? missing : null;
}

// Starts the binary with an empty environment; it must exit with 41.
function workerStarts(bin) {
	const res = spawnSync(bin, [], {
		env: {},
		stdio: "ignore",
		timeout: WORKER_PROBE_TIMEOUT_MS,
	});

	return !res.error && res.status === WORKER_NO_VERSION_EXIT_CODE;
}

function checkUsable(bin, label) {
	if (!isExecutableFile(bin)) {
		return false;
	}

	const missing = missingSharedLibraries(bin);

	if (missing) {
		log(`${label}: ${bin} is missing shared libraries (${missing.join(", ")}); not using it`);

		return false;
	}

	if (!workerStarts(bin)) {
		log(`${label}: ${bin} does not start correctly on this host; not using it`);

		return false;
	}

	return true;
}

// Runs a command with its output sent to our stderr (stdout is reserved for
// the resulting path). Throws on failure unless `allowFailure`.
function run(cmd, args, { cwd, env, allowFailure = false } = {}) {
	log(`$ ${[cmd, ...args].join(" ")}${cwd ? `   (in ${cwd})` : ""}`);

	const res = spawnSync(cmd, args, {
		cwd,
		env: env ?? process.env,
		stdio: ["ignore", process.stderr.fd, process.stderr.fd],
	});

	if (res.error) {
		if (allowFailure) {
			return false;
		}
		throw new EnsureWorkerError(`cannot run ${cmd}: ${res.error.message}`);
	}

	if (res.status !== 0) {
		if (allowFailure) {
			return false;
		}
		throw new EnsureWorkerError(`${cmd} ${args.join(" ")} failed with ${res.signal ?? `exit code ${res.status}`}`);
	}

	return true;
}

function capture(cmd, args, options = {}) {
	const res = spawnSync(cmd, args, { encoding: "utf8", ...options });

	if (res.error || res.status !== 0) {
		throw new EnsureWorkerError(`${cmd} ${args.join(" ")} failed: ${res.error?.message ?? res.stderr.trim()}`);
	}

	return res.stdout.trim();
}

// Copies `bin` into `dir` atomically: a sibling temp directory is filled and
// then renamed, so readers never see a half-written binary. If another
// process won the race, its result is kept.
function installIntoCache(bin, dir, info) {
	fs.mkdirSync(path.dirname(dir), { recursive: true });

	const staging = fs.mkdtempSync(`${dir}.staging-`);

	try {
		const staged = path.join(staging, WORKER_BIN_NAME);

		fs.copyFileSync(bin, staged);
		fs.chmodSync(staged, 0o755);
		fs.writeFileSync(path.join(staging, "build-info.json"), `${JSON.stringify(info, null, 2)}\n`);

		if (fs.existsSync(dir)) {
			// A previous, unusable entry (checked by the caller): replace it.
			fs.rmSync(dir, { recursive: true, force: true });
		}

		try {
			fs.renameSync(staging, dir);
		} catch (error) {
			if (!["EEXIST", "ENOTEMPTY"].includes(error.code)) {
				throw error;
			}
			log(`${dir} appeared concurrently; keeping that one`);
		}
	} finally {
		fs.rmSync(staging, { recursive: true, force: true });
	}

	return path.join(dir, WORKER_BIN_NAME);
}

function npmCommand() {
	// Inside `npm run`/`npm install`, reuse the very npm that runs us.
	const execPath = process.env.npm_execpath;

	if (execPath && /\.c?js$/.test(execPath) && fs.existsSync(execPath)) {
		return [process.execPath, [execPath]];
	}

	return ["npm", []];
}

// ---------------------------------------------------------------- step c --

function prebuiltTarName(version) {
	// Same naming as mediasoup's npm-scripts.mjs getWorkerPrebuildTarName().
	let name = `mediasoup-worker-${version}-${os.platform()}-${os.arch()}`;

	if (os.platform() === "linux") {
		name += `-kernel${Number(os.release().split(".")[0])}`;
	}

	return `${name}.tgz`;
}

async function fetchPrebuilt(version, cacheDir) {
	const base = process.env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL || PREBUILT_BASE_URL;
	const url = `${base}/${version}/${prebuiltTarName(version)}`;

	log(`trying the official prebuilt worker: ${url}`);

	let body;

	try {
		const res = await fetch(url, { signal: AbortSignal.timeout(PREBUILT_TIMEOUT_MS) });

		if (!res.ok) {
			log(`prebuilt not available: HTTP ${res.status}`);

			return null;
		}
		body = Buffer.from(await res.arrayBuffer());
	} catch (error) {
		log(`prebuilt download failed: ${error.cause?.message ?? error.message}`);

		return null;
	}

	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mediasoup-prebuilt-"));

	try {
		const tarPath = path.join(tmp, "worker.tgz");

		fs.writeFileSync(tarPath, body);

		if (!run("tar", ["-xzf", tarPath, "-C", tmp], { allowFailure: true })) {
			log("prebuilt archive could not be extracted");

			return null;
		}

		const bin = listFilesRecursive(tmp).find((file) => path.basename(file) === WORKER_BIN_NAME);

		if (!bin) {
			log(`prebuilt archive holds no ${WORKER_BIN_NAME}`);

			return null;
		}
		fs.chmodSync(bin, 0o755);

		if (!checkUsable(bin, "prebuilt")) {
			return null;
		}

		return installIntoCache(bin, cacheDir, {
			mediasoupVersion: version,
			source: "official-prebuilt",
			url,
			installedAt: new Date().toISOString(),
		});
	} finally {
		fs.rmSync(tmp, { recursive: true, force: true });
	}
}

// ---------------------------------------------------------------- step d --

function missingAptPackages() {
	return APT_PACKAGES.filter((pkg) => {
		// biome-ignore lint/suspicious/noTemplateCurlyInString: a dpkg-query format, not a JS template.
		const res = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });

		return res.status !== 0 || !res.stdout.includes("install ok installed");
	});
}

function ensureAptPackages() {
	if (spawnSync("dpkg-query", ["--version"], { stdio: "ignore" }).error) {
		throw new EnsureWorkerError(
			"the offline worker build supports Debian/Ubuntu (apt) hosts only; " +
				"set MEDIASOUP_WORKER_BIN to a mediasoup-worker binary instead",
		);
	}

	const missing = missingAptPackages();

	if (missing.length === 0) {
		log("build packages: all present");

		return;
	}

	log(`build packages missing: ${missing.join(" ")}`);

	let prefix = [];

	if (process.getuid?.() !== 0) {
		if (spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0) {
			prefix = ["sudo", "-n"];
		} else {
			throw new EnsureWorkerError(
				`not root and no password-less sudo: run \`apt-get install -y ${missing.join(" ")}\` as root, then retry`,
			);
		}
	}

	const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
	const aptGet = (args, allowFailure) =>
		prefix.length > 0
			? run(prefix[0], [...prefix.slice(1), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", ...args], {
					env,
					allowFailure,
				})
			: run("apt-get", args, { env, allowFailure });
	const install = ["install", "-y", "--no-install-recommends", ...missing];

	if (!aptGet(install, true)) {
		log("apt-get install failed; refreshing the package lists and retrying");
		aptGet(["update"], false);
		aptGet(install, false);
	}

	const still = missingAptPackages();

	if (still.length > 0) {
		throw new EnsureWorkerError(`packages still missing after apt-get: ${still.join(" ")}`);
	}
}

function applyPatch(sourceRoot, [file, from, to, why]) {
	const full = path.join(sourceRoot, file);
	const text = fs.readFileSync(full, "utf8");
	const count = text.split(from).length - 1;

	if (count !== 1) {
		throw new EnsureWorkerError(
			`recipe patch does not apply to ${file} (expected exactly one "${from}", found ${count}); ` +
				"the offline recipe must be reviewed for this mediasoup version",
		);
	}

	fs.writeFileSync(full, text.replace(from, to));
	log(`patched ${file}: ${why}`);
}

function prepareSources(tmp, version) {
	const [npm, npmArgs] = npmCommand();
	const tarball = capture(npm, [...npmArgs, "pack", `mediasoup@${version}`, "--pack-destination", tmp, "--silent"], {
		cwd: tmp,
	})
		.split("\n")
		.pop()
		.trim();

	log(`fetched ${tarball} from the npm registry`);
	run("tar", ["-xzf", path.join(tmp, tarball), "-C", tmp]);

	const sourceRoot = path.join(tmp, "package");
	const subprojectsDir = path.join(sourceRoot, "worker", "subprojects");

	// No wraps: every dependency comes from the local subprojects below (or
	// from pkg-config), never from a download.
	for (const entry of fs.readdirSync(subprojectsDir)) {
		if (entry.endsWith(".wrap")) {
			fs.rmSync(path.join(subprojectsDir, entry));
		}
	}

	fs.cpSync(path.join(RECIPE_DIR, "subprojects"), subprojectsDir, { recursive: true });

	for (const entry of fs.readdirSync(path.join(RECIPE_DIR, "subprojects"))) {
		const dir = path.join(subprojectsDir, entry);

		if (fs.existsSync(path.join(dir, "meson.build"))) {
			fs.copyFileSync(path.join(RECIPE_DIR, "empty.c"), path.join(dir, "empty.c"));
		}
	}

	for (const patch of SOURCE_PATCHES) {
		applyPatch(sourceRoot, patch);
	}

	return sourceRoot;
}

function buildOffline(version, recipeHash, cacheDir) {
	log("building mediasoup-worker from source with Debian packages (takes a few minutes)");

	const started = Date.now();

	ensureAptPackages();

	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mediasoup-worker-build-"));

	try {
		const sourceRoot = prepareSources(tmp, version);
		const workerDir = path.join(sourceRoot, "worker");
		const buildDir = path.join(tmp, "build");
		const jobs = Number(process.env.MEDIASOUP_BUILD_JOBS) || os.availableParallelism();
		const pkgConfigPath = [path.join(workerDir, "subprojects", "unordered_dense"), process.env.PKG_CONFIG_PATH]
			.filter(Boolean)
			.join(path.delimiter);
		const env = { ...process.env, PKG_CONFIG_PATH: pkgConfigPath };

		run(
			"meson",
			["setup", "--wrap-mode=nodownload", "--buildtype", "release", "-Db_ndebug=true", buildDir, workerDir],
			{ env },
		);
		run("ninja", ["-C", buildDir, `-j${jobs}`, WORKER_BIN_NAME], { env });

		const built = path.join(buildDir, WORKER_BIN_NAME);

		run("strip", [built]);

		if (!checkUsable(built, "offline build")) {
			throw new EnsureWorkerError("the freshly built worker does not run on this host");
		}

		const seconds = Math.round((Date.now() - started) / 1000);
		const bin = installIntoCache(built, cacheDir, {
			mediasoupVersion: version,
			recipeHash,
			source: "offline-build",
			buildSeconds: seconds,
			compiler: capture("c++", ["--version"]).split("\n")[0],
			meson: capture("meson", ["--version"]),
			builtAt: new Date().toISOString(),
		});

		log(`built and cached in ${seconds} s: ${bin}`);

		return bin;
	} finally {
		if (process.env.MEDIASOUP_KEEP_BUILD_DIR) {
			log(`build tree kept at ${tmp}`);
		} else {
			fs.rmSync(tmp, { recursive: true, force: true });
		}
	}
}

// ------------------------------------------------------------------ main --

export async function ensureWorker() {
	const envBin = process.env.MEDIASOUP_WORKER_BIN;

	if (envBin) {
		const resolved = path.resolve(envBin);

		if (isExecutableFile(resolved)) {
			log(`using MEDIASOUP_WORKER_BIN: ${resolved}`);

			return resolved;
		}
		log(`MEDIASOUP_WORKER_BIN=${envBin} is not an executable file; ignoring it`);
	}

	const version = readMediasoupVersion();
	const recipeHash = computeRecipeHash();
	const builtDir = path.join(cacheRoot(), `${version}-${recipeHash}`);
	const prebuiltDir = path.join(cacheRoot(), `${version}-prebuilt-${os.platform()}-${os.arch()}`);

	for (const dir of [builtDir, prebuiltDir]) {
		const bin = path.join(dir, WORKER_BIN_NAME);

		if (fs.existsSync(bin) && checkUsable(bin, "cache")) {
			log(`using cached worker: ${bin}`);

			return bin;
		}
	}

	if (process.env.MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD) {
		log("MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD set: not trying the official prebuilt");
	} else {
		const bin = await fetchPrebuilt(version, prebuiltDir);

		if (bin) {
			log(`using official prebuilt worker: ${bin}`);

			return bin;
		}
	}

	return buildOffline(version, recipeHash, builtDir);
}

const invokedDirectly = process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url;

if (invokedDirectly) {
	try {
		const bin = await ensureWorker();

		process.stdout.write(`${bin}\n`);
	} catch (error) {
		log(`ERROR: ${error instanceof EnsureWorkerError ? error.message : error.stack}`);
		process.exitCode = 1;
	}
}
