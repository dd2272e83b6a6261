#!/usr/bin/env node
// Installs the media-node package (its own package.json + package-lock.json)
// with a working mediasoup-worker, without ever letting mediasoup's installer
// try GitHub.
//
// Usage: node media-node/scripts/install.mjs      (the root postinstall runs it)
//
//   1. ensure-worker.mjs resolves a worker binary (env, cache, official
//      prebuilt, or offline build);
//   2. `npm ci` (or `npm install` without a lockfile) inside media-node/ with
//      MEDIASOUP_WORKER_BIN set, which makes mediasoup's postinstall skip its
//      own download/build. Skipped when node_modules already matches the
//      lockfile (a stamp records the hashes of package.json and the lockfile);
//   3. copies the binary to node_modules/mediasoup/worker/out/Release/, where
//      mediasoup looks by default, so running the service needs no env var.
//
// Idempotent; a no-op run takes well under a second once the worker is cached.
// Node >= 20, builtins only. Set SECURECONNECT_FORCE_NPM_CI=1 to reinstall.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

import { ensureWorker } from "./ensure-worker.mjs";

const MEDIA_NODE_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const NODE_MODULES = path.join(MEDIA_NODE_DIR, "node_modules");
const PACKAGE_JSON = path.join(MEDIA_NODE_DIR, "package.json");
const LOCKFILE = path.join(MEDIA_NODE_DIR, "package-lock.json");
const STAMP = path.join(NODE_MODULES, ".secureconnect-install-stamp");
const MEDIASOUP_DIR = path.join(NODE_MODULES, "mediasoup");
const RUNTIME_WORKER_BIN = path.join(MEDIASOUP_DIR, "worker", "out", "Release", "mediasoup-worker");

function log(message) {
	process.stderr.write(`[media-node install] ${message}\n`);
}

function sha256(file) {
	return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function readJson(file) {
	try {
		return JSON.parse(fs.readFileSync(file, "utf8"));
	} catch {
		return null;
	}
}

function expectedStamp() {
	return {
		packageJson: sha256(PACKAGE_JSON),
		lockfile: fs.existsSync(LOCKFILE) ? sha256(LOCKFILE) : null,
	};
}

function nodeModulesUpToDate(expected) {
	const stamp = readJson(STAMP);

	return (
		stamp !== null &&
		expected.lockfile !== null &&
		stamp.packageJson === expected.packageJson &&
		stamp.lockfile === expected.lockfile &&
		fs.existsSync(path.join(MEDIASOUP_DIR, "package.json"))
	);
}

function npmCommand() {
	// Inside an npm lifecycle script, reuse the npm (and Node) that runs us.
	const execPath = process.env.npm_execpath;

	if (execPath && /\.c?js$/.test(execPath) && fs.existsSync(execPath)) {
		return [process.execPath, [execPath]];
	}

	return ["npm", []];
}

function npmInstall(workerBin) {
	const useCi = fs.existsSync(LOCKFILE);
	const [cmd, prefixArgs] = npmCommand();
	const args = [...prefixArgs, useCi ? "ci" : "install", "--no-audit", "--no-fund"];
	const env = { ...process.env, MEDIASOUP_WORKER_BIN: workerBin };

	// When run from the root package's postinstall, npm exports settings of
	// that outer install to the environment; the location-related ones belong
	// to the root install, not to this nested one in media-node/.
	for (const key of ["npm_config_local_prefix", "npm_config_prefix", "npm_config_global"]) {
		delete env[key];
	}

	log(`$ npm ${args.slice(prefixArgs.length).join(" ")}   (in media-node/, MEDIASOUP_WORKER_BIN=${workerBin})`);

	const res = spawnSync(cmd, args, { cwd: MEDIA_NODE_DIR, env, stdio: "inherit" });

	if (res.error || res.status !== 0) {
		throw new Error(`npm ${useCi ? "ci" : "install"} failed in ${MEDIA_NODE_DIR}`);
	}
}

function sameContent(a, b) {
	try {
		const sa = fs.statSync(a);
		const sb = fs.statSync(b);

		return sa.size === sb.size && sha256(a) === sha256(b);
	} catch {
		return false;
	}
}

// Copies the worker to mediasoup's default location (temp file + rename, so a
// running mediasoup never sees a partial binary).
function placeRuntimeWorker(workerBin) {
	if (sameContent(workerBin, RUNTIME_WORKER_BIN)) {
		log(`worker already in place: ${RUNTIME_WORKER_BIN}`);

		return;
	}

	fs.mkdirSync(path.dirname(RUNTIME_WORKER_BIN), { recursive: true });

	const tmp = `${RUNTIME_WORKER_BIN}.tmp-${process.pid}`;

	fs.copyFileSync(workerBin, tmp);
	fs.chmodSync(tmp, 0o755);
	fs.renameSync(tmp, RUNTIME_WORKER_BIN);
	log(`worker installed: ${RUNTIME_WORKER_BIN}`);
}

async function main() {
	const started = Date.now();
	const workerBin = await ensureWorker();
	const expected = expectedStamp();

	if (!process.env.SECURECONNECT_FORCE_NPM_CI && nodeModulesUpToDate(expected)) {
		log("node_modules matches package-lock.json; skipping npm ci");
	} else {
		npmInstall(workerBin);

		if (!fs.existsSync(LOCKFILE)) {
			throw new Error("npm install did not produce package-lock.json");
		}

		// Hash again: `npm install` may have just written the lockfile.
		fs.writeFileSync(STAMP, `${JSON.stringify(expectedStamp())}\n`);
	}

	placeRuntimeWorker(workerBin);
	log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
	await main();
} catch (error) {
	log(`ERROR: ${error.message}`);
	process.exitCode = 1;
}
