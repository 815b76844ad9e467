/**
 * `npm start`: a local n8n with this package installed, the WeChat API simulator and a ready demo.
 *
 * Builds the package, installs Node 24 and n8n (versions pinned in scripts/versions.json) into a cache
 * (default `<repo>/.cache`, env N8N_WECHAT_CACHE; the first run takes about 5 minutes, later runs reuse it),
 * starts the WeChat simulator (test/simulator/cli.ts) on 127.0.0.1, links this repository into an n8n user
 * folder as an installed community package (`n8n-nodes-wechat-qrcode.*` node types), imports the demo
 * credential and the two example workflows from demo/, publishes the scan-trigger workflow, starts
 * `n8n start` on http://127.0.0.1:5678, creates the owner account, and prints the editor URL, the login, the
 * trigger's production webhook URL and a command that fires a simulated scan at it. Ctrl-C stops n8n and the
 * simulator. The user folder persists between runs, so what you build in the editor survives a restart.
 *
 *   npm start                      simulator + demo
 *   npm start -- --real            no simulator and no demo credential (env WECHAT_REAL=1 does the same):
 *                                  n8n with the package and the example workflows, for a real account
 *   npm start -- --reset-demo      re-import the demo credential and workflows (overwrites your edits to them)
 *   npm start -- --verbose         also echo n8n's log (it always goes to <user folder>/n8n.log)
 *
 * Environment: N8N_PORT (default 5678), WECHAT_SIM_PORT (default 4100), N8N_WECHAT_CACHE (cache folder),
 * N8N_WECHAT_USER_FOLDER (default <cache>/demo-user, or <cache>/real-user with --real), WECHAT_REAL=1,
 * WEBHOOK_URL (the public base URL behind your reverse proxy, for --real). n8n listens on 127.0.0.1 only.
 * With --real, n8n generates its own encryption key and keeps it in the user folder.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

import {
	PACKAGE_NAME,
	REPO_ROOT,
	assertSupportedPlatform,
	buildPackage,
	cacheDir,
	createInstance,
	ensureRuntime,
	importCredential,
	importWorkflow,
	isPortInUse,
	log,
	publishWorkflow,
	servedNodeTypes,
	setupOwner,
	spawnTracked,
	stopAllTracked,
	stopN8n,
	stopProcess,
	startN8n,
	waitForWebhook,
} from './n8n-runtime.mjs';

/** Fixed so the demo's encrypted credential survives restarts. A demo value, not a secret. */
export const DEMO_ENCRYPTION_KEY = 'wechat-qrcode-demo-encryption-key-not-a-secret';
export const DEMO_LOGIN = { email: 'demo@example.com', password: 'WeChatDemo2024!', firstName: 'Demo', lastName: 'Owner' };
export const DEMO_DIR = path.join(REPO_ROOT, 'demo');
export const WEBHOOK_PATH = 'wechat';

export function loadDemo() {
	const read = (file) => JSON.parse(fs.readFileSync(path.join(DEMO_DIR, file), 'utf8'));
	const credential = read('credential.json');
	const createCodes = read('create-codes.workflow.json');
	const scanTrigger = read('scan-trigger.workflow.json');
	const trigger = scanTrigger.nodes.find((node) => node.type === `${PACKAGE_NAME}.weChatScanTrigger`);
	return { credential, createCodes, scanTrigger, webhookId: trigger.webhookId };
}

/** The demo credential pointed at a running simulator. */
export function demoCredentialFor(credential, simulator) {
	return {
		...credential,
		data: { ...credential.data, apiBaseUrl: simulator.url, mpBaseUrl: simulator.url, appId: simulator.appId, appSecret: simulator.appSecret, accessToken: '' },
	};
}

/** Starts test/simulator/cli.ts and resolves with its first stdout line ({url, appId, appSecret}). */
export async function startSimulatorProcess(port) {
	if (await isPortInUse(port)) throw new Error(`port ${port} on 127.0.0.1 is already in use (set WECHAT_SIM_PORT to another port)`);
	const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
	if (!fs.existsSync(tsx)) throw new Error('tsx is missing: run npm install first');
	const child = spawnTracked(tsx, ['test/simulator/cli.ts', '--port', String(port)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }, 'simulator');
	let stderr = '';
	child.stderr.on('data', (chunk) => {
		stderr += chunk;
	});
	const info = await new Promise((resolve, reject) => {
		const lines = readline.createInterface({ input: child.stdout });
		const timer = setTimeout(() => reject(new Error(`the simulator did not start within 60 s: ${stderr}`)), 60_000);
		lines.once('line', (line) => {
			clearTimeout(timer);
			try {
				resolve(JSON.parse(line));
			} catch {
				reject(new Error(`unexpected simulator output: ${line}`));
			}
		});
		child.exitPromise.then(({ code }) => {
			clearTimeout(timer);
			reject(new Error(`the simulator exited (code ${code}): ${stderr}`));
		});
	});
	return { child, ...info };
}

function hash(value) {
	return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

function parseArgs(argv) {
	const flags = { real: process.env.WECHAT_REAL === '1' || process.env.WECHAT_REAL === 'true', resetDemo: false, verbose: false };
	for (const arg of argv) {
		if (arg === '--real') flags.real = true;
		else if (arg === '--reset-demo') flags.resetDemo = true;
		else if (arg === '--verbose') flags.verbose = true;
		else if (arg === '--help' || arg === '-h') flags.help = true;
		else throw new Error(`unknown option ${arg} (try --help)`);
	}
	return flags;
}

function portFromEnv(name, fallback) {
	const value = process.env[name];
	if (value === undefined || value === '') return fallback;
	const port = Number(value);
	if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a TCP port, got ${value}`);
	return port;
}

async function main() {
	const flags = parseArgs(process.argv.slice(2));
	if (flags.help) {
		const source = fs.readFileSync(new URL(import.meta.url), 'utf8');
		process.stdout.write(`${source.slice(source.indexOf('/**') + 3, source.indexOf('*/')).replace(/^ \* ?/gm, '').trim()}\n`);
		return;
	}
	assertSupportedPlatform();
	const n8nPort = portFromEnv('N8N_PORT', 5678);
	const simulatorPort = portFromEnv('WECHAT_SIM_PORT', 4100);
	const userFolder = path.resolve(process.env.N8N_WECHAT_USER_FOLDER || path.join(cacheDir(), flags.real ? 'real-user' : 'demo-user'));

	let stopping = false;
	let simulator = null;
	let instance = null;
	const stopAll = async (code) => {
		if (stopping) return;
		stopping = true;
		log('stopping ...');
		if (instance) await stopN8n(instance);
		if (simulator) await stopProcess(simulator.child);
		await stopAllTracked(); // e.g. an npm install still running (its cache marker is then not written)
		log('stopped');
		process.exit(code);
	};
	process.on('SIGINT', () => void stopAll(0));
	process.on('SIGTERM', () => void stopAll(0));
	process.on('SIGHUP', () => void stopAll(0));
	// If whatever started us goes away without passing on a signal, do not leave n8n and the simulator behind.
	const parent = process.ppid;
	setInterval(() => {
		if (process.ppid !== parent) void stopAll(0);
	}, 2_000).unref();

	try {
		await buildPackage();
		const runtime = await ensureRuntime();
		if (await isPortInUse(n8nPort)) throw new Error(`port ${n8nPort} on 127.0.0.1 is already in use (set N8N_PORT to another port)`);

		const demo = loadDemo();
		if (!flags.real) {
			simulator = await startSimulatorProcess(simulatorPort);
			log(`WeChat simulator on ${simulator.url} (PID ${simulator.child.pid})`);
		}

		// --real: n8n generates its own encryption key and keeps it in the user folder's config.
		// WEBHOOK_URL (e.g. https://n8n.example.com/ behind a reverse proxy) is passed on: n8n shows it as the production URL.
		const publicUrl = process.env.WEBHOOK_URL ? { WEBHOOK_URL: process.env.WEBHOOK_URL } : {};
		instance = await createInstance(runtime, {
			userFolder,
			port: n8nPort,
			encryptionKey: flags.real ? undefined : DEMO_ENCRYPTION_KEY,
			env: publicUrl,
		});

		// Import before `n8n start`: a running n8n does not pick up a CLI publish.
		const markerFile = path.join(userFolder, 'demo-imported.json');
		let marker = {};
		try {
			marker = JSON.parse(fs.readFileSync(markerFile, 'utf8'));
		} catch {
			/* first run */
		}
		const workflows = [demo.createCodes, demo.scanTrigger];
		const credential = simulator ? demoCredentialFor(demo.credential, simulator) : null;
		const want = { credential: credential ? hash(credential) : null, workflows: hash(workflows) };
		if (credential && (flags.resetDemo || marker.credential !== want.credential)) {
			log(`importing the demo credential "${credential.name}" (simulator ${simulator.url})`);
			await importCredential(instance, credential);
			marker.credential = want.credential;
			fs.writeFileSync(markerFile, JSON.stringify(marker));
		}
		if (flags.resetDemo || marker.workflows !== want.workflows) {
			log('importing the demo workflows');
			await importWorkflow(instance, workflows);
			marker.workflows = want.workflows;
			marker.published = false;
			fs.writeFileSync(markerFile, JSON.stringify(marker));
		}
		if (credential && !marker.published) {
			log(`publishing "${demo.scanTrigger.name}"`);
			await publishWorkflow(instance, demo.scanTrigger.id);
			marker.published = true;
			fs.writeFileSync(markerFile, JSON.stringify(marker));
		}

		const logFile = path.join(userFolder, 'n8n.log');
		log(`starting n8n on ${instance.baseUrl} (log: ${logFile})`);
		const server = await startN8n(instance, { logFile, echo: flags.verbose });
		const cookie = await setupOwner(instance, DEMO_LOGIN);

		const ours = (await servedNodeTypes(instance, cookie)).filter((name) => name.startsWith(`${PACKAGE_NAME}.`));
		if (!ours.includes(`${PACKAGE_NAME}.weChatQrCode`) || !ours.includes(`${PACKAGE_NAME}.weChatScanTrigger`)) {
			throw new Error(`n8n did not load the package's node types (found: ${ours.join(', ') || 'none'}); see ${logFile}`);
		}

		const webhookUrl = `${instance.baseUrl}/webhook/${demo.webhookId}/${WEBHOOK_PATH}`;
		if (credential) await waitForWebhook(webhookUrl);
		const publicWebhookUrl = process.env.WEBHOOK_URL
			? `${process.env.WEBHOOK_URL.replace(/\/+$/, '')}/webhook/${demo.webhookId}/${WEBHOOK_PATH}`
			: webhookUrl;

		const lines = [
			'',
			`n8n ${runtime.versions.n8n} is running with ${PACKAGE_NAME} installed (${ours.join(', ')})`,
			`  Editor:        ${instance.baseUrl}/`,
			`  Login:         ${DEMO_LOGIN.email} / ${DEMO_LOGIN.password}`,
			`  User folder:   ${userFolder}`,
		];
		if (credential) {
			const { data } = credential;
			lines.push(
				`  Simulator:     ${simulator.url} (AppID ${data.appId})`,
				`  Workflows:     "${demo.createCodes.name}" (open it and click "Execute workflow")`,
				`                 "${demo.scanTrigger.name}" (published)`,
				`  Webhook (production URL of the WeChat Scan Trigger):`,
				`                 ${webhookUrl}`,
				'',
				'Fire a simulated scan at it (safe mode, encrypted):',
				`  npx tsx test/simulator/push-cli.ts --url ${webhookUrl} --token ${data.token} --app-id ${data.appId} --aes-key ${data.encodingAESKey} --mode safe --event SCAN --scene store_42`,
				'or WeChat\'s URL verification:',
				`  npx tsx test/simulator/push-cli.ts --url ${webhookUrl} --token ${data.token} --verify`,
			);
		} else {
			lines.push(
				'  Real mode: no simulator and no demo credential. Create a "WeChat Official Account API" credential in the',
				'  editor, select it in the two demo workflows, and publish "WeChat QR demo: scan trigger"; its production URL is',
				`                 ${publicWebhookUrl}`,
				'  (WeChat needs it on port 80/443: put n8n behind a reverse proxy with your domain).',
			);
		}
		lines.push('', `Press Ctrl-C to stop n8n${simulator ? ' and the simulator' : ''}.`, '');
		process.stdout.write(`${lines.join('\n')}\n`);

		const exitedFirst = await Promise.race([
			server.exitPromise.then(() => 'n8n'),
			simulator ? simulator.child.exitPromise.then(() => 'simulator') : new Promise(() => {}),
		]);
		if (!stopping) {
			log(`${exitedFirst} exited on its own; stopping the rest (see ${logFile})`);
			await stopAll(1);
		}
	} catch (error) {
		process.stderr.write(`npm start: ${error instanceof Error ? error.message : String(error)}\n`);
		await stopAll(1);
	}
}

if (import.meta.url === `file://${process.argv[1]}`) {
	await main().catch((error) => {
		process.stderr.write(`npm start: ${error instanceof Error ? error.message : String(error)}\n`);
		process.exit(2);
	});
}
