/**
 * Benchmark 4, the trigger through a real n8n: signed WeChat pushes over HTTP, driven by autocannon, to an
 * active WeChat Scan Trigger, next to n8n's built-in Webhook node on the same instance (n8n's own floor for a
 * production webhook). One `n8n start` (regular mode, SQLite), set up with the end-to-end building blocks of
 * scripts/n8n-runtime.mjs; two published workflows that hold their trigger node and nothing else.
 *
 * Every request is a distinct event (its own OpenID), signed at most seconds before it is sent, so the
 * trigger's retry memory and its 300 s timestamp window never reject one. Bodies come from a pool built
 * before each window, so autocannon spends no CPU on signing or AES. The contenders alternate in windows of
 * a fixed duration and connection count. After each window the benchmark waits until n8n has recorded the
 * window's executions (public API) and checks them against the answers.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import * as rt from '../../scripts/n8n-runtime.mjs';
import type { Instance } from '../../scripts/n8n-runtime.mjs';
import type { PushMode } from '../simulator/push';
import { benchAccount, benchSubscribePush } from './lib/benchAccount';
import { addTimes, IDLE, PROFILER, timeByPlace, type TimeByPlace } from './lib/cpuProfile';
import { machineCpu, machineShares, processGroupCpuMs } from './lib/cpuTime';
import { atLeast, atMost, progress, round, type BenchmarkResult, type Cell, type TargetResult } from './lib/report';

export interface TriggerThroughN8nOptions {
	/** Length of one measured window, per contender and mode. */
	seconds: number;
	/** One unrecorded window per contender and mode before the measured ones. */
	warmupSeconds: number;
	/** Measured windows per contender and mode; the order of the contenders rotates from round to round. */
	rounds: number;
	connections: number;
	modes: Mode[];
	/**
	 * Records a CPU profile of n8n's main process for every measured window (test/bench/lib/n8nProfiler.cjs)
	 * and reports where each contender's time went, per answered request. The profiler slows n8n, so such a
	 * run explains the figures of an unprofiled one and does not replace them.
	 */
	profile: boolean;
}

type Mode = Extract<PushMode, 'safe' | 'plaintext'>;
/**
 * `reference` is a reference, not a target: the Webhook node checking a header against an n8n Header Auth
 * credential, so that n8n does for it what it does for any node that carries a credential.
 */
type ContenderName = 'trigger' | 'webhook' | 'reference';
const CONTENDERS: ContenderName[] = ['trigger', 'webhook', 'reference'];

// The part of autocannon 8's programmatic API used here (the package ships no types).
interface AutocannonRequest {
	method: string;
	path: string;
	headers: Record<string, string>;
	body?: Buffer | string;
}
interface AutocannonResult {
	duration: number;
	errors: number;
	timeouts: number;
	non2xx: number;
}
interface AutocannonTracker {
	on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void;
}
type Autocannon = (
	options: {
		url: string;
		connections: number;
		duration: number;
		timeout: number;
		method: string;
		headers: Record<string, string>;
		requests: Array<{
			setupRequest: (request: AutocannonRequest) => AutocannonRequest;
			onResponse: (status: number, body: string) => void;
		}>;
	},
	callback: (error: Error | null, result: AutocannonResult) => void,
) => AutocannonTracker;
const autocannon = createRequire(__filename)('autocannon') as Autocannon;

const ACCOUNT = benchAccount('wxbench0000000004');
const { appId: APP_ID, token: SERVER_TOKEN, encodingAESKey: ENCODING_AES_KEY } = ACCOUNT;
const LOGIN = { email: 'bench@example.com', password: 'WeChatBench2026!', firstName: 'Bench', lastName: 'Owner' };
const PACKAGE = rt.PACKAGE_NAME;
const IDS = {
	credential: 'benchCredential4',
	trigger: 'benchTriggerWf04',
	webhook: 'benchWebhookWf04',
	reference: 'benchWhAuthWf004',
	headerCredential: 'benchHeaderCred4',
	triggerWebhookId: 'b4e1d0a2-6c1f-4d3e-9a57-0f2b8c4d6e10',
	webhookNodeId: 'b4e1d0a2-6c1f-4d3e-9a57-0f2b8c4d6e20',
	referenceNodeId: 'b4e1d0a2-6c1f-4d3e-9a57-0f2b8c4d6e30',
};
/** The header the reference contender checks (its value is random per run). */
const AUTH_HEADER = 'x-bench-key';
const BODY = 'success';
/** autocannon's per-request timeout: a request without an answer after this counts as a timeout. */
const TIMEOUT_SECONDS = 10;
/** Bounds for n8n to finish recording a window's executions. */
const DRAIN_TIMEOUT_MS = 180_000;
const DRAIN_QUIET_MS = 5_000;

const CONTENDER_LABEL: Record<ContenderName, string> = {
	trigger: 'WeChat Scan Trigger',
	webhook: 'Webhook node (n8n built-in)',
	reference: 'Webhook node + Header Auth credential (reference)',
};

interface PushRequest {
	path: string;
	body: Buffer;
}

interface Contender {
	name: ContenderName;
	workflowId: string;
	urlPath: string;
	/** Sent with every request besides Content-Type. */
	headers: Record<string, string>;
}

interface Window {
	contender: ContenderName;
	mode: Mode;
	/** 0 for the warm-up. */
	round: number;
	seconds: number;
	sent: number;
	ok: number;
	non2xx: number;
	wrongBody: number;
	errors: number;
	timeouts: number;
	latenciesMs: number[];
	executions: number;
	executionStatuses: Record<string, number>;
	/** From the window's first request to the end of its last execution, as n8n recorded it. */
	executionSeconds: number;
	drainSeconds: number;
	/** Requests signed on the fly because the window outran its pool. */
	builtLate: number;
	load1m: number;
	wrongSamples: string[];
	/** Pauses of n8n's event loop of 50 ms or more during the window, and the longest. */
	n8nPauses: number;
	n8nLongestPauseMs: number;
	/** Time n8n spent in garbage collections of 20 ms or more during the window. */
	n8nGcMs: number;
	/** CPU time n8n's processes used during the window (null where /proc is missing). */
	n8nCpuMs: number | null;
	/** CPU time of this process, autocannon's load generator, during the window. */
	loadGeneratorCpuMs: number;
	/** How busy the whole machine was during the window, and the time the hypervisor gave elsewhere (steal), in % of all cores. */
	machineBusyPercent: number | null;
	machineStealPercent: number | null;
	/** With `profile`: CPU time of n8n's main process during the window, by place (see lib/cpuProfile.ts). */
	cpuByPlace: TimeByPlace | null;
}

/** What test/bench/lib/n8nPauseWatch.cjs recorded in n8n's processes between `fromMs` and `toMs`. */
function n8nPausesBetween(dir: string, fromMs: number, toMs: number): Pick<Window, 'n8nPauses' | 'n8nLongestPauseMs' | 'n8nGcMs'> {
	const found = { n8nPauses: 0, n8nLongestPauseMs: 0, n8nGcMs: 0 };
	for (const name of fs.readdirSync(dir)) {
		for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
			const [kind, at, ms] = line.split(' ');
			const atMs = Number(at);
			const durationMs = Number(ms);
			if (kind === 'pause' && atMs - durationMs >= fromMs && atMs <= toMs) {
				found.n8nPauses++;
				found.n8nLongestPauseMs = Math.max(found.n8nLongestPauseMs, durationMs);
			}
			if (kind === 'gc' && atMs >= fromMs && atMs <= toMs) found.n8nGcMs += durationMs;
		}
	}
	return found;
}

async function untilFileExists(file: string, failure: string): Promise<void> {
	for (let waited = 0; !fs.existsSync(file); waited += 100) {
		if (waited > 60_000) throw new Error(`${failure} (${file}) within 60 s`);
		await rt.sleep(100);
	}
}

/**
 * Drives test/bench/lib/n8nProfiler.cjs in n8n's main process: `start` begins a CPU profile, `stop` ends it and
 * returns where the time went; the profile file is kept in `keepDir` under `name` for a closer look.
 */
function n8nProfiler(pid: number, profileDir: string, keepDir: string) {
	let written = 0;
	return {
		async start(): Promise<void> {
			const started = path.join(profileDir, `${pid}.started`);
			fs.rmSync(started, { force: true });
			process.kill(pid, 'SIGUSR2');
			await untilFileExists(started, 'n8n did not start its CPU profiler');
		},
		async stop(name: string): Promise<TimeByPlace> {
			process.kill(pid, 'SIGUSR2');
			const file = path.join(profileDir, `${pid}-${++written}.cpuprofile`);
			await untilFileExists(file, 'n8n wrote no CPU profile');
			const kept = path.join(keepDir, `${name}.cpuprofile`);
			fs.renameSync(file, kept);
			return timeByPlace(kept, PACKAGE);
		},
	};
}

function signedPush(contender: Contender, mode: Mode, index: number): PushRequest {
	const push = benchSubscribePush(ACCOUNT, mode, index);
	return { path: `${contender.urlPath}?${new URLSearchParams(push.query)}`, body: Buffer.from(push.body, 'utf8') };
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return NaN;
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function sortedCopy(values: number[]): number[] {
	return [...values].sort((a, b) => a - b);
}

function load1m(): number {
	return round(os.loadavg()[0], 2);
}

// ─── n8n: the instance and its two workflows ─────────────────────────────────────────────────────────────

function triggerWorkflow() {
	return {
		id: IDS.trigger,
		name: 'bench 4: WeChat Scan Trigger',
		active: false,
		nodes: [
			{
				id: 'c0a8f3e2-1b4d-4f6a-8e2c-7d9b1a3c5e01',
				name: 'WeChat Scan Trigger',
				type: `${PACKAGE}.weChatScanTrigger`,
				typeVersion: 1,
				position: [0, 0],
				webhookId: IDS.triggerWebhookId,
				// Defaults: subscribe-with-scene and SCAN start the workflow, no filter, no reply ("success").
				parameters: { events: ['subscribeScene', 'scan'], sceneFilter: '', options: {} },
				credentials: { weChatOfficialAccountApi: { id: IDS.credential, name: 'bench 4 credential' } },
			},
		],
		connections: {},
		settings: { executionOrder: 'v1' },
		pinData: {},
	};
}

/**
 * The same shape: one trigger node, answering "success" on receipt, under the same kind of path. With
 * `headerAuth`, the node checks a header against an n8n Header Auth credential (the reference contender).
 */
function webhookWorkflow(headerAuth: boolean) {
	const nodeId = headerAuth ? IDS.referenceNodeId : IDS.webhookNodeId;
	return {
		id: headerAuth ? IDS.reference : IDS.webhook,
		name: headerAuth ? 'bench 4: Webhook node with Header Auth' : 'bench 4: Webhook node',
		active: false,
		nodes: [
			{
				id: headerAuth ? 'c0a8f3e2-1b4d-4f6a-8e2c-7d9b1a3c5e03' : 'c0a8f3e2-1b4d-4f6a-8e2c-7d9b1a3c5e02',
				name: 'Webhook',
				type: 'n8n-nodes-base.webhook',
				typeVersion: 2.1,
				position: [0, 0],
				webhookId: nodeId,
				parameters: {
					httpMethod: 'POST',
					path: `${nodeId}/wechat`,
					...(headerAuth ? { authentication: 'headerAuth' } : {}),
					responseMode: 'onReceived',
					options: { responseData: BODY },
				},
				...(headerAuth ? { credentials: { httpHeaderAuth: { id: IDS.headerCredential, name: 'bench 4 header credential' } } } : {}),
			},
		],
		connections: {},
		settings: { executionOrder: 'v1' },
		pinData: {},
	};
}

type Totals = Record<ContenderName, { sent: number; ok: number; executions: number; lastId: number }>;

interface Recorded {
	count: number;
	maxId: number;
	statuses: Record<string, number>;
	/** When the last of them finished (ms since the epoch; 0 if none). */
	lastStoppedMs: number;
}

/** Executions of one workflow with an id above `afterId`, newest first (the public API's order). */
async function executionsAfter(instance: Instance, apiKey: string, workflowId: string, afterId: number): Promise<Recorded> {
	const statuses: Record<string, number> = {};
	let count = 0;
	let maxId = afterId;
	let lastStoppedMs = 0;
	let cursor: string | undefined;
	// Bounded: 400 pages of 250 is far more than any window records.
	for (let page = 0; page < 400; page++) {
		const query = new URLSearchParams({ workflowId, limit: '250', includeData: 'false' });
		if (cursor) query.set('cursor', cursor);
		const response = await rt.restRequest(instance, 'GET', `/api/v1/executions?${query}`, { apiKey });
		if (response.status !== 200) throw new Error(`GET /api/v1/executions: HTTP ${response.status} ${response.text.slice(0, 300)}`);
		const body = response.json as { data: Array<{ id: string; status: string; stoppedAt: string | null }>; nextCursor?: string | null };
		let reachedOld = false;
		for (const execution of body.data) {
			const id = Number(execution.id);
			if (id <= afterId) {
				reachedOld = true;
				continue;
			}
			count++;
			maxId = Math.max(maxId, id);
			statuses[execution.status] = (statuses[execution.status] ?? 0) + 1;
			if (execution.stoppedAt) lastStoppedMs = Math.max(lastStoppedMs, Date.parse(execution.stoppedAt));
		}
		if (reachedOld || !body.nextCursor) return { count, maxId, statuses, lastStoppedMs };
		cursor = body.nextCursor;
	}
	throw new Error(`more than 100,000 executions of ${workflowId} after ${afterId}`);
}

/**
 * Waits until n8n has recorded the window's executions: the count reaches the 2xx answers and stays put for
 * two polls, or stops growing for DRAIN_QUIET_MS (then the difference is reported), within DRAIN_TIMEOUT_MS.
 * The public API leaves out executions still running, so a settled count means finished executions.
 */
async function drain(instance: Instance, apiKey: string, workflowId: string, afterId: number, answered: number) {
	const started = Date.now();
	let last = await executionsAfter(instance, apiKey, workflowId, afterId);
	let lastChange = Date.now();
	let stablePolls = 0;
	while (Date.now() - started < DRAIN_TIMEOUT_MS) {
		await rt.sleep(1_000);
		const now = await executionsAfter(instance, apiKey, workflowId, afterId);
		if (now.count !== last.count) {
			lastChange = Date.now();
			stablePolls = 0;
		} else stablePolls++;
		last = now;
		if ((last.count >= answered && stablePolls >= 2) || Date.now() - lastChange >= DRAIN_QUIET_MS) break;
	}
	return { ...last, seconds: round((Date.now() - started) / 1000, 1) };
}

/** POSTs signed pushes until the webhook answers 200 (n8n registers published webhooks while it starts). */
async function waitUntilServing(instance: Instance, contender: Contender): Promise<{ sent: number; ok: number }> {
	const started = Date.now();
	let sent = 0;
	for (;;) {
		const push = signedPush(contender, 'safe', sent);
		sent++;
		const response = await fetch(`${instance.baseUrl}${push.path}`, { method: 'POST', headers: { 'content-type': 'text/xml', ...contender.headers }, body: push.body.toString('utf8'), signal: AbortSignal.timeout(10_000) }).catch(() => null);
		const text = response ? await response.text() : '';
		if (response?.status === 200) {
			if (text !== BODY) throw new Error(`${CONTENDER_LABEL[contender.name]} answered 200 "${text.slice(0, 200)}", expected "${BODY}"`);
			return { sent, ok: 1 };
		}
		if (Date.now() - started > 60_000) throw new Error(`${contender.urlPath} still answers ${response?.status ?? 'nothing'} after 60 s: ${text.slice(0, 200)}`);
		await rt.sleep(500);
	}
}

// ─── One window of load ──────────────────────────────────────────────────────────────────────────────────

/** What autocannon's side of a window measured. */
type WindowLoad = Pick<Window, 'seconds' | 'sent' | 'ok' | 'non2xx' | 'wrongBody' | 'errors' | 'timeouts' | 'latenciesMs' | 'builtLate' | 'wrongSamples'> & {
	startedMs: number;
};

function runWindow(instance: Instance, contender: Contender, mode: Mode, seconds: number, connections: number, poolSize: number) {
	const pool = Array.from({ length: poolSize }, (_, i) => signedPush(contender, mode, i));
	let next = 0;
	let builtLate = 0;
	let ok = 0;
	let wrongBody = 0;
	const wrongSamples: string[] = [];
	const latenciesMs: number[] = [];
	const startedMs = Date.now();
	return new Promise<WindowLoad>((resolve, reject) => {
		const tracker = autocannon(
			{
				url: instance.baseUrl,
				connections,
				duration: seconds,
				timeout: TIMEOUT_SECONDS,
				method: 'POST',
				headers: { 'content-type': 'text/xml', ...contender.headers },
				requests: [
					{
						// Called once per request sent: each takes the next distinct push.
						setupRequest: (request) => {
							let push = pool[next];
							if (push === undefined) {
								push = signedPush(contender, mode, next);
								builtLate++;
							}
							next++;
							request.path = push.path;
							request.body = push.body;
							return request;
						},
						onResponse: (status, body) => {
							if (status >= 200 && status < 300) {
								if (body === BODY) ok++;
								else {
									wrongBody++;
									if (wrongSamples.length < 3) wrongSamples.push(`${status} ${body.slice(0, 200)}`);
								}
							} else if (wrongSamples.length < 3) wrongSamples.push(`${status} ${body.slice(0, 200)}`);
						},
					},
				],
			},
			(error, result) => {
				if (error) {
					reject(error);
					return;
				}
				resolve({
					startedMs,
					seconds: result.duration,
					sent: next,
					ok,
					non2xx: result.non2xx,
					wrongBody,
					errors: result.errors,
					timeouts: result.timeouts,
					latenciesMs,
					builtLate,
					wrongSamples,
				});
			},
		);
		tracker.on('response', (_client, _status, _bytes, responseTime) => {
			latenciesMs.push(responseTime);
		});
	});
}

// ─── The benchmark ───────────────────────────────────────────────────────────────────────────────────────

export async function benchTriggerThroughN8n(options: TriggerThroughN8nOptions): Promise<BenchmarkResult> {
	rt.setLogger((line) => progress(line));
	const runtime = await rt.ensureRuntime();
	await rt.buildPackage();
	const userFolder = rt.tmpUserFolder('n8n-wechat-bench-');
	const logFile = path.join(userFolder, 'n8n.log');
	const pauseDir = path.join(userFolder, 'pauses');
	fs.mkdirSync(pauseDir, { recursive: true });
	const profileDir = path.join(userFolder, 'profiles');
	const keptProfilesDir = path.join(__dirname, 'results', 'profiles');
	if (options.profile) {
		fs.mkdirSync(profileDir, { recursive: true });
		fs.rmSync(keptProfilesDir, { recursive: true, force: true });
		fs.mkdirSync(keptProfilesDir, { recursive: true });
	}
	let instance: Instance | null = null;
	let completed = false;
	try {
		const n8n = await rt.createInstance(runtime, {
			userFolder,
			port: await rt.getFreePort(),
			encryptionKey: `bench-${randomBytes(16).toString('hex')}`,
			snapshot: true,
			// n8n prunes beyond 10,000 executions by default, which would eat the ones being counted.
			env: {
				EXECUTIONS_DATA_PRUNE: 'false',
				NODE_OPTIONS: [`--require ${path.join(__dirname, 'lib', 'n8nPauseWatch.cjs')}`, ...(options.profile ? [`--require ${path.join(__dirname, 'lib', 'n8nProfiler.cjs')}`] : [])].join(' '),
				N8N_PAUSE_LOG_DIR: pauseDir,
				...(options.profile ? { N8N_PROFILE_DIR: profileDir } : {}),
			},
		});
		instance = n8n;
		await rt.importCredential(n8n, {
			id: IDS.credential,
			name: 'bench 4 credential',
			type: 'weChatOfficialAccountApi',
			data: {
				appId: APP_ID,
				appSecret: 'unused-by-the-trigger',
				token: SERVER_TOKEN,
				encodingAESKey: ENCODING_AES_KEY,
				previousEncodingAESKey: '',
				// Nothing calls WeChat here; a closed local port rather than the real API.
				apiBaseUrl: 'http://127.0.0.1:9',
				mpBaseUrl: 'http://127.0.0.1:9',
				accessToken: '',
			},
		});
		const authHeaderValue = randomBytes(24).toString('hex');
		await rt.importCredential(n8n, { id: IDS.headerCredential, name: 'bench 4 header credential', type: 'httpHeaderAuth', data: { name: AUTH_HEADER, value: authHeaderValue } });
		await rt.importWorkflow(n8n, [triggerWorkflow(), webhookWorkflow(false), webhookWorkflow(true)]);
		for (const id of [IDS.trigger, IDS.webhook, IDS.reference]) await rt.publishWorkflow(n8n, id);
		const server = await rt.startN8n(n8n, { logFile });
		if (server.pid === undefined) throw new Error('n8n start has no PID');
		// n8n is started detached, so its PID is also its process group (task runners included).
		const n8nPid = server.pid;
		const profiler = options.profile ? n8nProfiler(n8nPid, profileDir, keptProfilesDir) : null;
		const cookie = await rt.setupOwner(n8n, LOGIN);
		const apiKey = await rt.createApiKey(n8n, cookie, { label: 'bench 4' });

		const contenders: Record<ContenderName, Contender> = {
			trigger: { name: 'trigger', workflowId: IDS.trigger, urlPath: `/webhook/${IDS.triggerWebhookId}/wechat`, headers: {} },
			webhook: { name: 'webhook', workflowId: IDS.webhook, urlPath: `/webhook/${IDS.webhookNodeId}/wechat`, headers: {} },
			reference: { name: 'reference', workflowId: IDS.reference, urlPath: `/webhook/${IDS.referenceNodeId}/wechat`, headers: { [AUTH_HEADER]: authHeaderValue } },
		};
		// Per workflow: what it was sent and answered in total, and the newest execution id already counted.
		const totals = Object.fromEntries(CONTENDERS.map((name) => [name, { sent: 0, ok: 0, executions: 0, lastId: 0 }])) as Totals;
		for (const contender of Object.values(contenders)) {
			const ready = await waitUntilServing(n8n, contender);
			const settled = await drain(n8n, apiKey, contender.workflowId, 0, ready.ok);
			Object.assign(totals[contender.name], { sent: ready.sent, ok: ready.ok, executions: settled.count, lastId: settled.maxId });
		}

		const windows: Window[] = [];
		// Pools are sized from the fastest window so far (twice its rate, so a window rarely outruns its pool).
		let fastestPerSecond = 500;
		const measure = async (name: ContenderName, mode: Mode, roundNo: number, seconds: number) => {
			const contender = contenders[name];
			const label = `${roundNo === 0 ? 'warm-up' : `round ${roundNo}/${options.rounds}`}: ${CONTENDER_LABEL[name]}, ${mode}, ${seconds} s`;
			progress(`${label} ...`);
			const poolSize = Math.ceil(fastestPerSecond * seconds * 2) + options.connections;
			const profiled = profiler !== null && roundNo > 0 ? profiler : null;
			await profiled?.start();
			const n8nCpuBefore = processGroupCpuMs(n8nPid);
			const machineBefore = machineCpu();
			const ownCpuBefore = process.cpuUsage();
			const { startedMs, ...window } = await runWindow(n8n, contender, mode, seconds, options.connections, poolSize);
			const ownCpu = process.cpuUsage(ownCpuBefore);
			const n8nCpuAfter = processGroupCpuMs(n8nPid);
			const shares = machineShares(machineBefore, machineCpu());
			const cpu = {
				n8nCpuMs: n8nCpuBefore === null || n8nCpuAfter === null ? null : n8nCpuAfter - n8nCpuBefore,
				loadGeneratorCpuMs: (ownCpu.user + ownCpu.system) / 1000,
				machineBusyPercent: shares?.busyPercent ?? null,
				machineStealPercent: shares?.stealPercent ?? null,
			};
			const cpuByPlace = profiled ? await profiled.stop(`${mode}-${name}-round${roundNo}`) : null;
			const load = load1m();
			const settled = await drain(n8n, apiKey, contender.workflowId, totals[name].lastId, window.ok);
			const total = totals[name];
			total.sent += window.sent;
			total.ok += window.ok;
			total.executions += settled.count;
			total.lastId = settled.maxId;
			fastestPerSecond = Math.max(fastestPerSecond, window.sent / window.seconds);
			// A window without executions (a failure the targets report) has no span: its own length stands in.
			const executionSeconds = settled.count > 0 ? round((settled.lastStoppedMs - startedMs) / 1000, 2) : window.seconds;
			const pauses = n8nPausesBetween(pauseDir, startedMs, startedMs + window.seconds * 1000);
			windows.push({ ...window, ...pauses, ...cpu, cpuByPlace, contender: name, mode, round: roundNo, executions: settled.count, executionStatuses: settled.statuses, executionSeconds, drainSeconds: settled.seconds, load1m: load });
			progress(
				`${label}: ${round(window.ok / window.seconds, 1)} req/s, ${round(settled.count / executionSeconds, 1)} executions/s, p99 ${round(percentile(sortedCopy(window.latenciesMs), 0.99), 1)} ms, ${window.ok}/${window.sent} answered "${BODY}", ${settled.count} executions (drained in ${settled.seconds} s), n8n CPU ${cpu.n8nCpuMs === null ? '?' : round(cpu.n8nCpuMs / window.ok, 2)} ms per answer, n8n paused ${pauses.n8nPauses}× (longest ${pauses.n8nLongestPauseMs} ms), load ${load}`,
			);
		};

		for (const mode of options.modes) {
			for (const name of CONTENDERS) await measure(name, mode, 0, options.warmupSeconds);
		}
		for (let roundNo = 1; roundNo <= options.rounds; roundNo++) {
			// The order rotates, so that a stall n8n has at a fixed time after its start does not always fall
			// into the same contender's window, and each contender goes first equally often over 6 rounds.
			const order = CONTENDERS.map((_, i) => CONTENDERS[(i + roundNo - 1) % CONTENDERS.length]);
			for (const mode of options.modes) {
				for (const name of order) await measure(name, mode, roundNo, options.seconds);
			}
		}
		const result = report(options, windows, totals);
		completed = true;
		return result;
	} finally {
		if (!completed && fs.existsSync(logFile)) progress(`n8n log (last lines):\n${fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
		// Also on failure: n8n and everything it started stop, and its folder goes.
		await rt.stopN8n(instance);
		await rt.stopAllTracked();
		fs.rmSync(userFolder, { recursive: true, force: true });
	}
}

// ─── The report ──────────────────────────────────────────────────────────────────────────────────────────

interface Summary {
	perSecond: number;
	executionsPerSecond: number;
	p50: number;
	p99: number;
	ok: number;
	failed: number;
	sent: number;
	executions: number;
	n8nCpuPerAnswerMs: number | null;
}

function summarize(windows: Window[]): Summary {
	const latencies = sortedCopy(windows.flatMap((w) => w.latenciesMs));
	const seconds = windows.reduce((sum, w) => sum + w.seconds, 0);
	const ok = windows.reduce((sum, w) => sum + w.ok, 0);
	return {
		perSecond: ok / seconds,
		executionsPerSecond: windows.reduce((sum, w) => sum + w.executions, 0) / windows.reduce((sum, w) => sum + w.executionSeconds, 0),
		p50: percentile(latencies, 0.5),
		p99: percentile(latencies, 0.99),
		ok,
		failed: windows.reduce((sum, w) => sum + w.non2xx + w.wrongBody + w.errors, 0),
		sent: windows.reduce((sum, w) => sum + w.sent, 0),
		executions: windows.reduce((sum, w) => sum + w.executions, 0),
		n8nCpuPerAnswerMs: windows.some((w) => w.n8nCpuMs === null) ? null : windows.reduce((sum, w) => sum + (w.n8nCpuMs ?? 0), 0) / ok,
	};
}

const windowName = (w: Window): string => `${CONTENDER_LABEL[w.contender]}, ${w.mode}, ${w.round === 0 ? 'warm-up' : `round ${w.round}`}`;

const statusText = (statuses: Record<string, number>): string =>
	Object.entries(statuses)
		.map(([status, count]) => `${count.toLocaleString('en-US')} ${status}`)
		.join(', ') || 'none';

function report(
	options: TriggerThroughN8nOptions,
	windows: Window[],
	totals: Totals,
): BenchmarkResult {
	const measured = windows.filter((w) => w.round > 0);
	const roundRows: Cell[][] = windows.map((w) => {
		const sorted = sortedCopy(w.latenciesMs);
		return [
			w.round === 0 ? 'warm-up' : w.round,
			CONTENDER_LABEL[w.contender],
			w.mode,
			w.seconds,
			round(w.ok / w.seconds, 1),
			round(w.executions / w.executionSeconds, 1),
			round(percentile(sorted, 0.5), 1),
			round(percentile(sorted, 0.99), 1),
			w.sent,
			w.ok,
			w.non2xx + w.wrongBody,
			`${w.errors} / ${w.timeouts}`,
			w.executions,
			w.executions - w.ok,
			w.executionSeconds,
			w.drainSeconds,
		];
	});
	const percentCell = (value: number | null) => (value === null ? null : round(value, 1));
	const machineRows: Cell[][] = windows.map((w) => [
		w.round === 0 ? 'warm-up' : w.round,
		CONTENDER_LABEL[w.contender],
		w.mode,
		w.n8nCpuMs === null ? null : round(w.n8nCpuMs / w.ok, 2),
		w.n8nCpuMs === null ? null : round(w.n8nCpuMs / 10 / w.seconds, 1),
		round(w.loadGeneratorCpuMs / 10 / w.seconds, 1),
		percentCell(w.machineBusyPercent),
		percentCell(w.machineStealPercent),
		w.n8nPauses,
		w.n8nLongestPauseMs,
		w.n8nGcMs,
		w.load1m,
	]);

	const summaryRows: Cell[][] = [];
	const targets: TargetResult[] = [];
	const ratios: Record<string, { throughput: number; executions: number; p99: number }> = {};
	/** The trigger against the reference (Webhook node with a Header Auth credential); reported, not judged. */
	const referenceRatios: Record<string, { throughput: number; executions: number; p99: number }> = {};
	/** Trigger p99 / Webhook node p99 within each round: how much the pooled ratio can move from round to round. */
	const perRoundP99: Record<string, number[]> = {};
	for (const mode of options.modes) {
		const summaries = Object.fromEntries(CONTENDERS.map((name) => [name, summarize(measured.filter((w) => w.mode === mode && w.contender === name))])) as Record<
			ContenderName,
			Summary
		>;
		const { trigger, webhook, reference } = summaries;
		const throughput = trigger.perSecond / webhook.perSecond;
		const executions = trigger.executionsPerSecond / webhook.executionsPerSecond;
		const p99 = trigger.p99 / webhook.p99;
		ratios[mode] = { throughput, executions, p99 };
		referenceRatios[mode] = {
			throughput: trigger.perSecond / reference.perSecond,
			executions: trigger.executionsPerSecond / reference.executionsPerSecond,
			p99: trigger.p99 / reference.p99,
		};
		const p99Of = (name: ContenderName, roundNo: number) =>
			percentile(sortedCopy(measured.find((w) => w.mode === mode && w.contender === name && w.round === roundNo)?.latenciesMs ?? []), 0.99);
		perRoundP99[mode] = Array.from({ length: options.rounds }, (_, i) => p99Of('trigger', i + 1) / p99Of('webhook', i + 1));
		for (const name of CONTENDERS) {
			const s = summaries[name];
			summaryRows.push([
				name === 'trigger' ? `**${CONTENDER_LABEL[name]}**` : CONTENDER_LABEL[name],
				mode,
				round(s.perSecond, 1),
				`${round((s.perSecond / webhook.perSecond) * 100, 1)} %`,
				round(s.executionsPerSecond, 1),
				`${round((s.executionsPerSecond / webhook.executionsPerSecond) * 100, 1)} %`,
				round(s.p50, 1),
				round(s.p99, 1),
				`${round(s.p99 / webhook.p99, 2)} ×`,
				s.sent,
				s.ok,
				s.failed,
				s.executions,
				s.n8nCpuPerAnswerMs === null ? null : round(s.n8nCpuPerAnswerMs, 2),
			]);
		}
		targets.push(
			atLeast(`trigger throughput (200 answers/s) ≥ 85 % of the Webhook node's, ${mode} mode`, throughput * 100, 85, ' %'),
			atLeast(`trigger throughput (executions finished/s) ≥ 85 % of the Webhook node's, ${mode} mode`, executions * 100, 85, ' %'),
			atMost(`trigger p99 ≤ 1.15 × the Webhook node's, ${mode} mode`, p99, 1.15, ' ×'),
		);
	}
	for (const name of CONTENDERS) {
		const own = windows.filter((w) => w.contender === name);
		const failed = own.reduce((sum, w) => sum + w.non2xx + w.wrongBody + w.errors, 0);
		targets.push({
			target: `every request to the ${CONTENDER_LABEL[name]} answered 200 "${BODY}" (warm-ups included)`,
			measured: `${failed.toLocaleString('en-US')} failed of ${own.reduce((sum, w) => sum + w.sent, 0).toLocaleString('en-US')}`,
			pass: failed === 0,
			margin: failed === 0 ? 'exact' : `${failed} failures (non-2xx, wrong body or connection errors)`,
		});
		// An answered request must have its execution; a request still in flight when its window closed may have one.
		const total = totals[name];
		const inRange = total.executions >= total.ok && total.executions <= total.sent;
		targets.push({
			target: `${CONTENDER_LABEL[name]}: executions recorded between the 200 answers and the requests sent`,
			measured: `${total.executions.toLocaleString('en-US')} executions, ${total.ok.toLocaleString('en-US')} answered, ${total.sent.toLocaleString('en-US')} sent`,
			pass: inRange,
			margin: inRange
				? `${total.executions - total.ok} executions of requests still in flight when a window closed`
				: total.executions < total.ok
					? `${total.ok - total.executions} answered requests have no execution`
					: `${total.executions - total.sent} executions more than requests sent`,
		});
	}

	const notes = [
		`One n8n ${rt.VERSIONS.n8n} (Node ${rt.VERSIONS.node}, regular mode, SQLite, execution pruning off) on 127.0.0.1; autocannon runs in the benchmark process on the same machine, ${options.connections} connections, no pipelining, ${TIMEOUT_SECONDS} s timeout.`,
		`Windows of ${options.seconds} s (warm-up ${options.warmupSeconds} s), ${options.rounds} rounds, the contenders' order rotating per round (${CONTENDERS.map((name) => CONTENDER_LABEL[name]).join(', ')} in round 1); the summary pools the measured rounds: req/s = 200 "${BODY}" answers per second, p50/p99 over every answer's latency as autocannon measures it.`,
		'Every request is a distinct subscribe event (own OpenID), signed just before its window; the Webhook node gets bodies and query strings built the same way. Both workflows are one trigger node, answering on receipt with "success".',
		'"exec − OK" is executions recorded minus 200 answers in that window: positive means requests still in flight when autocannon closed the window also ran. "Exec. span" runs from the window\'s first request to the stoppedAt of its last execution; executions/s = executions / span. "Drain" is how long the benchmark waited after the window for the count to settle.',
		'"n8n CPU" is the user + system time of n8n\'s processes (its process group) during the window, from /proc: per 200 answer, and as a share of one core. "Load generator" is this process (autocannon and its bookkeeping). "Machine busy" and "Steal" come from /proc/stat over the same span, in % of all cores; steal is time the hypervisor gave to other guests. A machine near 100 % busy, or with steal, slows both contenders in ways the ratios do not cancel within a window.',
		'"n8n pauses" counts the times n8n\'s event loop stood still for 50 ms or more during the window (the longest in the next column), and "n8n GC" sums its garbage collections of 20 ms or more, both recorded inside n8n\'s processes by test/bench/lib/n8nPauseWatch.cjs. With 10 connections, one pause of n8n holds up to 10 answers, and about 1 % of a window\'s answers make its p99.',
		'Both answer at the same point: n8n sends the answer of a Webhook node set to respond immediately, and the answer the trigger returns as its webhookResponse, only after WorkflowRunner.run() has created the execution in the database and started it. Executions finished/s is reported as well, as the measure of the whole work.',
		...options.modes.map(
			(mode) =>
				`p99 of the trigger / p99 of the Webhook node within each round, ${mode} mode: ${perRoundP99[mode].map((ratio) => `${round(ratio, 2)} ×`).join(', ')} (the target is judged on the pooled ratio in the summary).`,
		),
		...windows.filter((w) => w.builtLate > 0).map((w) => `${windowName(w)}: ${w.builtLate} requests outran the pool and were signed during the window.`),
		...windows
			.filter((w) => w.wrongSamples.length > 0)
			.map((w) => `${windowName(w)}: unexpected answers, e.g. ${w.wrongSamples.map((s) => JSON.stringify(s)).join('; ')}`),
		...options.modes.map(
			(mode) =>
				`The trigger against the reference (the Webhook node checking a header with an n8n Header Auth credential, so that n8n also reads a credential and runs its credential checks for every execution), ${mode} mode: throughput ${round(referenceRatios[mode].throughput * 100, 1)} %, executions ${round(referenceRatios[mode].executions * 100, 1)} %, p99 ${round(referenceRatios[mode].p99, 2)} × (reported, not a target: the targets compare with the plain Webhook node).`,
		),
		...CONTENDERS.map(
			(name) => `${CONTENDER_LABEL[name]}: execution statuses over the measured rounds: ${statusText(mergeStatuses(measured.filter((w) => w.contender === name)))}.`,
		),
	];

	const profileTables = options.profile ? options.modes.map((mode) => profileTable(measured.filter((w) => w.mode === mode), mode)) : [];
	if (options.profile) {
		notes.push(
			`Profiled run: n8n's main process ran under V8's CPU profiler during every measured window, which slows it, so the rates and latencies above are not comparable with an unprofiled run. "CPU per answer" is the profile's CPU time by place (idle left out), divided by the window's 200 answers (the profiler's own start-up, before the load, is left out too); a builtin or native function is charged to the package of its nearest caller with a source. The profiles are in test/bench/results/profiles/ (open them in Chrome's DevTools).`,
		);
	}

	return {
		id: 4,
		title: 'Trigger through a real n8n',
		tables: [
			{
				title: `Summary (measured rounds pooled, ${options.connections} connections)`,
				columns: ['Contender', 'Mode', 'req/s', 'vs Webhook node', 'Executions/s', 'vs Webhook node', 'p50 (ms)', 'p99 (ms)', 'p99 vs Webhook node', 'Sent', '200 OK', 'Failed', 'Executions', 'n8n CPU per answer (ms)'],
				rows: summaryRows,
			},
			{
				title: 'Every window',
				columns: ['Round', 'Contender', 'Mode', 'Seconds', 'req/s', 'Executions/s', 'p50 (ms)', 'p99 (ms)', 'Sent', '200 OK', 'Bad answers', 'Errors / timeouts', 'Executions', 'exec − OK', 'Exec. span (s)', 'Drain (s)'],
				rows: roundRows,
			},
			{
				title: 'Every window: the machine',
				columns: ['Round', 'Contender', 'Mode', 'n8n CPU per answer (ms)', 'n8n CPU (% of a core)', 'Load generator CPU (% of a core)', 'Machine busy (% of all cores)', 'Steal (%)', 'n8n pauses ≥ 50 ms', 'Longest pause (ms)', 'n8n GC ≥ 20 ms (ms)', 'Load 1m'],
				rows: machineRows,
			},
			...profileTables,
		],
		targets,
		notes,
		data: {
			options,
			n8n: rt.VERSIONS.n8n,
			node: rt.VERSIONS.node,
			ratios,
			referenceRatios,
			perRoundP99,
			totals,
			windows: windows.map(({ latenciesMs, ...rest }) => {
				const sorted = sortedCopy(latenciesMs);
				return { ...rest, answers: latenciesMs.length, p50Ms: percentile(sorted, 0.5), p90Ms: percentile(sorted, 0.9), p99Ms: percentile(sorted, 0.99), maxMs: sorted[sorted.length - 1] ?? null };
			}),
		},
	};
}

/** Places that took at least this much CPU per answer for one contender get a row; the rest are summed. */
const PROFILE_ROW_MIN_MS = 0.05;

/** n8n's CPU per 200 answer, by place, trigger next to Webhook node, over the measured windows of one mode. */
function profileTable(windows: Window[], mode: Mode) {
	const perAnswer = (name: ContenderName): TimeByPlace => {
		const own = windows.filter((w) => w.contender === name);
		const answers = own.reduce((sum, w) => sum + w.ok, 0);
		const total = own.reduce((sum, w) => addTimes(sum, w.cpuByPlace ?? {}), {} as TimeByPlace);
		delete total[IDLE];
		delete total[PROFILER];
		return Object.fromEntries(Object.entries(total).map(([where, ms]) => [where, ms / answers]));
	};
	const trigger = perAnswer('trigger');
	const webhook = perAnswer('webhook');
	const reference = perAnswer('reference');
	const places = [...new Set([trigger, webhook, reference].flatMap((times) => Object.keys(times)))].sort(
		(a, b) => Math.abs((trigger[b] ?? 0) - (webhook[b] ?? 0)) - Math.abs((trigger[a] ?? 0) - (webhook[a] ?? 0)),
	);
	const sum = (times: TimeByPlace, of: string[]) => of.reduce((total, where) => total + (times[where] ?? 0), 0);
	const row = (label: string, of: string[]): Cell[] => {
		const [t, w, r] = [trigger, webhook, reference].map((times) => sum(times, of));
		return [label, round(t, 3), round(w, 3), round(t - w, 3), round(r, 3), round(t - r, 3)];
	};
	const shown = places.filter((where) => Math.max(trigger[where] ?? 0, webhook[where] ?? 0, reference[where] ?? 0) >= PROFILE_ROW_MIN_MS);
	const rest = places.filter((where) => !shown.includes(where));
	return {
		title: `n8n's CPU per answer by place, ${mode} mode (profiled run; largest differences trigger − Webhook node first)`,
		columns: ['Place', `${CONTENDER_LABEL.trigger} (ms)`, `${CONTENDER_LABEL.webhook} (ms)`, 'Trigger − Webhook node (ms)', `${CONTENDER_LABEL.reference} (ms)`, 'Trigger − reference (ms)'],
		rows: [
			...shown.map((where) => row(where, [where])),
			row(`${rest.length} other places (each under ${PROFILE_ROW_MIN_MS} ms)`, rest),
			row("**all of n8n's main process**", places),
		],
	};
}

function mergeStatuses(windows: Window[]): Record<string, number> {
	const merged: Record<string, number> = {};
	for (const w of windows) for (const [status, count] of Object.entries(w.executionStatuses)) merged[status] = (merged[status] ?? 0) + count;
	return merged;
}
