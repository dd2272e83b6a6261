#!/usr/bin/env node
// Runs mediasoup's own test suite (the compiled jest tests shipped in the npm
// package under node/lib/test) against the worker binary we installed.
// Proves that our worker build (possibly the offline one with shims) behaves
// like the official one.
//
// Usage: node media-node/scripts/test-mediasoup.mjs [extra jest args]
//
// The last line printed is `mediasoup suite: N passed, N failed`; the exit
// code is 0 only if jest succeeded and nothing failed.
//
// Needs `node media-node/scripts/install.mjs` first (jest, pick-port and
// werift-sctp are media-node devDependencies). Node >= 20, builtins only.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const MEDIA_NODE_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const NODE_MODULES = path.join(MEDIA_NODE_DIR, "node_modules");
const MEDIASOUP_DIR = path.join(NODE_MODULES, "mediasoup");
const MEDIASOUP_LIB = path.join(MEDIASOUP_DIR, "node", "lib");
const TEST_DATA_DIR = path.join(MEDIASOUP_LIB, "test", "data");
const RUNTIME_WORKER_BIN = path.join(MEDIASOUP_DIR, "worker", "out", "Release", "mediasoup-worker");
const JEST_BIN = path.join(NODE_MODULES, "jest", "bin", "jest.js");
const CERT_VALIDITY_DAYS = "3650";

function log(message) {
	process.stderr.write(`[test-mediasoup] ${message}\n`);
}

function fail(message) {
	log(`ERROR: ${message}`);
	console.log("mediasoup suite: 0 passed, 1 failed");
	process.exit(1);
}

// test-Worker.js starts a worker with dtlsCertificateFile/dtlsPrivateKeyFile
// pointing at test/data/, which the npm package does not ship. A throwaway
// self-signed pair is generated there (inside node_modules, never tracked).
function ensureDtlsFiles() {
	const cert = path.join(TEST_DATA_DIR, "dtls-cert.pem");
	const key = path.join(TEST_DATA_DIR, "dtls-key.pem");

	if (fs.existsSync(cert) && fs.existsSync(key)) {
		return;
	}

	fs.mkdirSync(TEST_DATA_DIR, { recursive: true });

	const res = spawnSync(
		"openssl",
		[
			"req",
			"-x509",
			"-newkey",
			"ec",
			"-pkeyopt",
			"ec_paramgen_curve:prime256v1",
			"-nodes",
			"-keyout",
			key,
			"-out",
			cert,
			"-days",
			CERT_VALIDITY_DAYS,
			"-subj",
			"/CN=mediasoup-test",
		],
		{ stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" },
	);

	if (res.error || res.status !== 0) {
		fail(`openssl could not create the test DTLS certificate: ${res.error?.message ?? res.stderr}`);
	}

	log(`generated ${cert} and ${key}`);
}

function workerEnv() {
	const env = { ...process.env };

	if (env.MEDIASOUP_WORKER_BIN) {
		log(`worker: MEDIASOUP_WORKER_BIN=${env.MEDIASOUP_WORKER_BIN}`);
	} else if (fs.existsSync(RUNTIME_WORKER_BIN)) {
		log(`worker: ${RUNTIME_WORKER_BIN}`);
	} else {
		fail(`no worker at ${RUNTIME_WORKER_BIN}; run node media-node/scripts/install.mjs`);
	}

	return env;
}

function main() {
	if (!fs.existsSync(MEDIASOUP_LIB) || !fs.existsSync(JEST_BIN)) {
		fail("media-node dependencies are not installed; run node media-node/scripts/install.mjs");
	}

	ensureDtlsFiles();

	const env = workerEnv();
	const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), "mediasoup-suite-"));
	const resultsFile = path.join(resultsDir, "results.json");
	// The tests are plain CommonJS: no transform. They live under
	// node_modules, which jest skips by default: retainAllFiles keeps them in
	// its file map and the empty ignore list lets them match.
	const config = {
		rootDir: MEDIASOUP_LIB,
		haste: { retainAllFiles: true },
		testEnvironment: "node",
		testMatch: ["<rootDir>/test/test-*.js"],
		testPathIgnorePatterns: [],
		transform: {},
	};
	const args = [
		JEST_BIN,
		"--config",
		JSON.stringify(config),
		"--json",
		"--outputFile",
		resultsFile,
		...process.argv.slice(2),
	];

	log(`running jest on ${path.relative(MEDIA_NODE_DIR, MEDIASOUP_LIB)}/test`);

	const res = spawnSync(process.execPath, args, { cwd: MEDIA_NODE_DIR, env, stdio: "inherit" });

	let passed = 0;
	let failed = 0;

	try {
		const results = JSON.parse(fs.readFileSync(resultsFile, "utf8"));

		passed = results.numPassedTests;
		// Suites that crash before running any test count as failures too.
		failed = results.numFailedTests + results.numRuntimeErrorTestSuites;

		if (results.numTotalTests === 0) {
			log("jest found no tests");
			failed = Math.max(failed, 1);
		}
	} catch (error) {
		log(`could not read jest results: ${error.message}`);
		failed = Math.max(failed, 1);
	} finally {
		fs.rmSync(resultsDir, { recursive: true, force: true });
	}

	console.log(`mediasoup suite: ${passed} passed, ${failed} failed`);
	process.exitCode = res.status === 0 && failed === 0 ? 0 : 1;
}

main();
