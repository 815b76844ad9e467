/**
 * `npm run test:queue`: this package in n8n 2.41.1's queue mode (main + webhook process + 2 workers, Redis,
 * PostgreSQL), against the in-process WeChat simulator (20 ms latency). Every figure is read from n8n's own
 * records (execution_entity / execution_data in Postgres, Bull's jobs in Redis, the workers' logs) and from
 * the simulator, asserted, and printed.
 *
 *   1. 20 + 20 concurrent bulk-create executions (Webhook → Code: 50 scenes → createTicket, concurrency 5)
 *      started through the webhook process: all succeed, both workers run some, one stable token is shared.
 *   2. 2,000 signed (safe mode) scan pushes at a steady rate, 10 % re-sent like WeChat's retries: exactly one
 *      execution per distinct event, none lost.
 *   3. SIGKILL of one worker while a batch runs: queued events still run (on the other worker); the ones the
 *      dead worker held are not re-run, and n8n 2.41.1 ends them as 'error' with the event overwritten —
 *      asserted as what is true, and printed with n8n's settings that govern it.
 *
 * Knobs (env): QUEUE_PUSHES (2000), QUEUE_PUSH_RATE (per second, 150), QUEUE_PUSH_CONCURRENCY (16),
 * QUEUE_TEST_KEEP=1 keeps the temp dir (logs, Postgres data) for a look afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';

import { startSimulator, type WeChatSimulator } from '../simulator';
import { buildScanPush } from '../simulator/push';
import { startAttributingProxy, type AttributingProxy } from './attribution';
import { killWorker, logTail, queueEnv, QUEUE_SETTINGS, readWorkerLog, rt, startCluster, type Cluster, type Runtime, type WorkerProcess } from './cluster';
import { loadFromN8n, type FlattedModule, type PgPool } from './pg';
import { runPushLoad, type PushPlan } from './pushLoad';
import {
	countBy,
	credentialUpdatedAt,
	executionData,
	executionsOf,
	maxExecutionId,
	nodeOutput,
	nodeStartTime,
	registeredWebhooks,
	TERMINAL_STATUSES,
	triggerEvent,
	waitForExecutions,
	type ExecutionRow,
} from './records';
import { delta, snapshot } from './cpu';
import { checkPrerequisites, redisQuery, startPostgres, startRedis, type PostgresServer, type RedisServer } from './services';
import { BULK, credential, CREDENTIAL_ID, ENCODING_AES_KEY, PUSH_TOKEN, SCAN, SLOW_SCAN, bulkCreateWorkflow, scanWorkflow, slowScanWorkflow, triggerPath } from './workflows';

const skipReason = inject('queueSkipReason');
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

const PUSHES = Number(process.env.QUEUE_PUSHES || 2_000);
const PUSH_RATE = Number(process.env.QUEUE_PUSH_RATE || 150);
const PUSH_CONCURRENCY = Number(process.env.QUEUE_PUSH_CONCURRENCY || 16);
const SIM_LATENCY_MS = 20;
const BULK_EXECUTIONS = 20;
const KILL_BATCH = 40;
const SLOW_CREATE_MS = 4_000;

/** Everything measured, printed at the end as one block and one JSON line. */
const report: Record<string, unknown> = {};

function say(line: string): void {
	process.stdout.write(`[queue-mode] ${line}\n`);
}

function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(1)} s`;
}

interface Context {
	runtime: Runtime;
	dir: string;
	redis: RedisServer;
	postgres: PostgresServer;
	pool: PgPool;
	flatted: FlattedModule;
	sim: WeChatSimulator;
	/** In front of the simulator: tells which n8n process fetched a token. */
	proxy: AttributingProxy;
	cluster: Cluster;
	startedAt: number;
}

let ctx: Context | undefined;
/** Set as soon as the n8n processes run, for log tails on a failure (also one in the setup). */
let startedCluster: Cluster | undefined;
let failed = false;
const cleanups: Array<() => Promise<void>> = [];

function need(): Context {
	if (!ctx) throw new Error('the queue-mode cluster did not start (see beforeAll)');
	return ctx;
}

/** Which worker logged "Worker started execution <id>" for each id. */
function workerOf(cluster: Cluster, ids: string[]): Map<string, string[]> {
	const logs = cluster.workers.map((worker) => ({ name: worker.name, facts: readWorkerLog(worker.logFile) }));
	const byId = new Map<string, string[]>();
	for (const id of ids) byId.set(id, logs.filter((log) => log.facts.started.has(id)).map((log) => log.name));
	return byId;
}

function distribution(byWorker: Map<string, string[]>): Record<string, number> {
	return countBy([...byWorker.values()], (names) => (names.length === 0 ? 'not in any worker log' : names.join('+')));
}

async function bulkWave(c: Context, wave: number): Promise<{ rows: ExecutionRow[]; byWorker: Map<string, string[]>; wallMs: number; httpOk: number; tokenFetchesAfter: number }> {
	const sinceId = await maxExecutionId(c.pool);
	const url = `${c.cluster.webhook.url}/webhook/${BULK.path}`;
	const started = Date.now();
	const responses = await Promise.all(
		Array.from({ length: BULK_EXECUTIONS }, async (_, i) => {
			const batch = `w${wave}-${String(i).padStart(2, '0')}`;
			try {
				const response = await fetch(url, {
					method: 'POST',
					headers: { 'content-type': 'application/json' },
					body: JSON.stringify({ batch }),
					signal: AbortSignal.timeout(240_000),
				});
				const text = await response.text();
				let json: Record<string, unknown> | null = null;
				try {
					json = JSON.parse(text) as Record<string, unknown>;
				} catch {
					/* not JSON */
				}
				return { batch, status: response.status, json, text };
			} catch (error) {
				return { batch, status: 0, json: null, text: (error as Error).message };
			}
		}),
	);
	const wallMs = Date.now() - started;
	const bad = responses.filter((r) => r.status !== 200 || r.json?.tickets !== BULK.itemsPerExecution);
	if (bad.length > 0) say(`wave ${wave}: unexpected answers: ${JSON.stringify(bad.slice(0, 3))}`);
	const { rows, timedOut } = await waitForExecutions(c.pool, BULK.id, { expected: BULK_EXECUTIONS, sinceId, timeoutMs: 120_000 });
	if (timedOut) say(`wave ${wave}: executions still unfinished: ${JSON.stringify(countBy(rows, (r) => r.status))}`);
	return {
		rows,
		byWorker: workerOf(c.cluster, rows.map((r) => r.id)),
		wallMs,
		httpOk: responses.length - bad.length,
		tokenFetchesAfter: c.sim.tokenFetches(),
	};
}

function processName(c: Context, pgid: number | undefined): string {
	if (pgid === undefined) return 'unknown';
	if (pgid === c.cluster.main.server?.pid) return 'main';
	if (pgid === c.cluster.webhook.child.pid) return 'webhook';
	return c.cluster.workers.find((w) => w.child.pid === pgid)?.name ?? `pgid ${pgid}`;
}

function processGroups(c: Context): Record<string, number | undefined> {
	return {
		main: c.cluster.main.server?.pid,
		webhook: c.cluster.webhook.child.pid,
		...Object.fromEntries(c.cluster.workers.map((w) => [w.name, w.child.pid])),
		postgres: c.postgres.child.pid,
		redis: c.redis.child.pid,
	};
}

interface FailedJob {
	executionId: string;
	failedReason: string | null;
	stalledCounter: string | null;
}

/** Bull keeps failed jobs in the `failed` sorted set (a set in older layouts); each job hash holds data + failedReason. */
async function bullFailedJobs(redisPort: number): Promise<Map<string, FailedJob>> {
	const key = 'bull:jobs:failed';
	const type = await redisQuery(redisPort, ['TYPE', key]);
	const ids = (type === 'zset' ? await redisQuery(redisPort, ['ZRANGE', key, '0', '-1']) : type === 'set' ? await redisQuery(redisPort, ['SMEMBERS', key]) : []) as string[];
	const jobs = new Map<string, FailedJob>();
	for (const jobId of ids.slice(0, 1_000)) {
		const [data, failedReason, stalledCounter] = (await redisQuery(redisPort, ['HMGET', `bull:jobs:${jobId}`, 'data', 'failedReason', 'stalledCounter'])) as Array<string | null>;
		let executionId = '';
		try {
			executionId = String((JSON.parse(data ?? '{}') as { executionId?: string | number }).executionId ?? '');
		} catch {
			/* not JSON */
		}
		jobs.set(jobId, { executionId, failedReason, stalledCounter });
	}
	return jobs;
}

if (skipReason !== '') {
	describe('queue mode', () => {
		it.skip(`SKIP: ${skipReason}`, () => undefined);
	});
}

describe.skipIf(skipReason !== '')('n8n 2.41.1 queue mode: main + webhook process + 2 workers on Redis and PostgreSQL', () => {
	beforeAll(async () => {
		let ok = false;
		try {
			await setUp();
			ok = true;
		} finally {
			if (!ok) failed = true;
		}
	}, 900_000);

	async function setUp(): Promise<void> {
		const startedAt = Date.now();
		const runtime = await rt.ensureRuntime();
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'n8n-wechat-queue-'));
		cleanups.push(async () => {
			if (process.env.QUEUE_TEST_KEEP === '1') say(`QUEUE_TEST_KEEP=1: kept ${dir}`);
			else fs.rmSync(dir, { recursive: true, force: true });
		});
		const prereq = checkPrerequisites();
		if (prereq.missing.length > 0 || !prereq.redisServer) throw new Error(`missing: ${prereq.missing.join(', ')}`);
		const { pg, flatted } = loadFromN8n(runtime.n8nDir);

		const redis = await startRedis(prereq.redisServer, dir);
		cleanups.push(() => redis.stop());
		const postgres = await startPostgres(prereq, dir, pg);
		cleanups.push(() => postgres.stop());
		const pool = new pg.Pool({ host: '127.0.0.1', port: postgres.port, user: postgres.user, password: postgres.password, database: postgres.database, max: 4 });
		pool.on('error', (error) => say(`PostgreSQL dropped an idle connection of the test's pool: ${error.message}`));
		cleanups.push(() => pool.end());

		const sim = await startSimulator({ latencyMs: SIM_LATENCY_MS });
		cleanups.push(() => sim.close());
		const n8nProcessGroups: number[] = [];
		const proxy = await startAttributingProxy(sim.url, { attributePaths: ['/cgi-bin/stable_token', '/cgi-bin/token'], groups: () => n8nProcessGroups });
		cleanups.push(() => proxy.close());

		const cluster = await startCluster({
			runtime,
			dir,
			encryptionKey: randomBytes(24).toString('hex'),
			env: queueEnv(postgres, redis),
			credentials: [credential({ url: proxy.url, appId: sim.appId, appSecret: sim.appSecret })],
			workflows: [bulkCreateWorkflow(), scanWorkflow(), slowScanWorkflow()],
		});
		cleanups.push(() => cluster.stop());
		startedCluster = cluster;

		// The webhook process serves what the main registers in webhook_entity when it activates the published
		// workflows, which may finish after the main already answers its readiness check.
		const expectedWorkflows = [BULK.id, SCAN.id, SLOW_SCAN.id];
		let webhooks = await registeredWebhooks(pool);
		for (let attempt = 0; attempt < 240 && !expectedWorkflows.every((id) => webhooks.some((w) => w.workflowId === id)); attempt++) {
			await rt.sleep(500);
			webhooks = await registeredWebhooks(pool);
		}
		for (const id of expectedWorkflows) {
			if (!webhooks.some((w) => w.workflowId === id)) throw new Error(`workflow ${id} has no registered webhook after 120 s: ${JSON.stringify(webhooks)}`);
		}
		for (const webhookId of [SCAN.webhookId, SLOW_SCAN.webhookId]) {
			// The trigger's GET (URL verification) answers 4xx without a signature, 404 only while unregistered.
			const probe = `${cluster.webhook.url}${triggerPath(webhookId)}`;
			let status = 0;
			for (let attempt = 0; attempt < 120; attempt++) {
				status = await fetch(probe, { signal: AbortSignal.timeout(5_000) })
					.then(async (r) => {
						await r.arrayBuffer();
						return r.status;
					})
					.catch(() => 0);
				if (status !== 0 && status !== 404) break;
				await rt.sleep(500);
			}
			if (status === 0 || status === 404) throw new Error(`${probe} still answers ${status}`);
		}
		for (const pid of [cluster.main.server?.pid, cluster.webhook.child.pid, ...cluster.workers.map((w) => w.child.pid)]) if (pid) n8nProcessGroups.push(pid);
		ctx = { runtime, dir, redis, postgres, pool, flatted, sim, proxy, cluster, startedAt };
		report.setup = {
			seconds: Math.round((Date.now() - startedAt) / 1000),
			n8n: runtime.versions.n8n,
			node: runtime.versions.node,
			simulatorLatencyMs: SIM_LATENCY_MS,
			queueSettings: QUEUE_SETTINGS,
			pids: {
				main: cluster.main.server?.pid,
				webhook: cluster.webhook.child.pid,
				workers: Object.fromEntries(cluster.workers.map((w) => [w.name, w.child.pid])),
				redis: redis.child.pid,
				postgres: postgres.child.pid,
			},
		};
		say(`cluster ready in ${seconds(Date.now() - startedAt)} (temp dir ${dir})`);
	}

	afterAll(async () => {
		if (failed && startedCluster) {
			const cluster = startedCluster;
			for (const [label, file] of [
				['main', cluster.mainLog],
				['webhook', cluster.webhook.logFile],
				...cluster.workers.map((w) => [w.name, w.logFile]),
			]) {
				say(`--- last lines of ${label} (${file}) ---\n${logTail(file, 30)}`);
			}
		}
		for (const cleanup of cleanups.reverse()) {
			try {
				await cleanup();
			} catch (error) {
				say(`cleanup: ${(error as Error).message}`);
			}
		}
		await rt.stopAllTracked();
		const leftovers = rt.trackedPids();
		if (ctx) report.totalSeconds = Math.round((Date.now() - ctx.startedAt) / 1000);
		report.processesLeft = leftovers.length;
		say(`RESULT ${JSON.stringify(report)}`);
	}, 120_000);

	it(`1. ${BULK_EXECUTIONS} concurrent bulk-create executions (x${BULK.itemsPerExecution} createTicket, concurrency ${BULK.concurrency}) via the webhook process: all succeed, on both workers, one stable token`, async () => {
		onTestFailed(() => {
			failed = true;
		});
		const c = need();
		expect(c.sim.tokenFetches()).toBe(0);
		const wave1 = await bulkWave(c, 1);
		const tokenRequests = c.sim.requestsTo('/cgi-bin/stable_token');
		const issued = c.sim.issuedTokens();
		const fetchTimes = tokenRequests.map((r) => r.at);
		const wave1Data = await executionData(c.pool, c.flatted, wave1.rows.map((r) => r.id));
		const qrStarts = wave1.rows.map((r) => nodeStartTime(wave1Data.get(r.id), BULK.qrNode)).filter((t): t is number => typeof t === 'number');
		const savedAt = await credentialUpdatedAt(c.pool, CREDENTIAL_ID);
		await c.proxy.settled();
		const exported = await rt.exportCredential(c.cluster.main, CREDENTIAL_ID);

		const wave2 = await bulkWave(c, 2);
		const wave2Data = await executionData(c.pool, c.flatted, wave2.rows.map((r) => r.id));
		const creates = c.sim.requestsTo('/cgi-bin/qrcode/create');
		const createErrcodes = countBy(creates, (r) => `${r.response.status}/${r.response.errcode ?? 'ok'}`);

		const all = [...wave1.rows, ...wave2.rows];
		const allData = new Map([...wave1Data, ...wave2Data]);
		const itemsOk = all.filter((r) => {
			const out = nodeOutput(allData.get(r.id), BULK.qrNode);
			return out.length === BULK.itemsPerExecution && out.every((item) => typeof item.json.ticket === 'string');
		}).length;
		const byWorker = new Map([...wave1.byWorker, ...wave2.byWorker]);
		const firstFetch = Math.min(...fetchTimes);
		const lastFetch = Math.max(...fetchTimes);
		const qrStartedBeforeLastFetch = qrStarts.filter((t) => t <= lastFetch + SIM_LATENCY_MS).length;

		const figures = {
			wave1: {
				executions: wave1.rows.length,
				status: countBy(wave1.rows, (r) => r.status),
				httpAnswersWith50Tickets: wave1.httpOk,
				wallSeconds: +(wave1.wallMs / 1000).toFixed(1),
				workers: distribution(wave1.byWorker),
				tokenFetches: wave1.tokenFetchesAfter,
				tokenFetchesByProcess: countBy(c.proxy.calls, (call) => processName(c, call.pgid)),
				tokenFetchWindowMs: lastFetch - firstFetch,
				distinctTokensIssued: issued.length,
				qrNodeStartsWithinThatWindow: qrStartedBeforeLastFetch,
				credentialLastSavedAt: savedAt?.toISOString() ?? null,
				credentialHoldsTheIssuedToken: exported.data.accessToken === issued[0],
			},
			wave2: {
				executions: wave2.rows.length,
				status: countBy(wave2.rows, (r) => r.status),
				httpAnswersWith50Tickets: wave2.httpOk,
				wallSeconds: +(wave2.wallMs / 1000).toFixed(1),
				workers: distribution(wave2.byWorker),
				newTokenFetches: wave2.tokenFetchesAfter - wave1.tokenFetchesAfter,
			},
			createTicketCalls: creates.length,
			createTicketAnswers: createErrcodes,
			executionsWith50Tickets: itemsOk,
		};
		report.bulkCreate = figures;
		say(`1. bulk create: ${JSON.stringify(figures, null, 2)}`);
		const byProcess = Object.entries(figures.wave1.tokenFetchesByProcess).map(([name, n]) => `${name} ${n}`).join(', ');
		say(
			wave1.tokenFetchesAfter === 1
				? `1. token: one stable_token fetch for the whole run (${byProcess}); every other call used the token persisted in the credential.`
				: `1. token: ${wave1.tokenFetchesAfter} stable_token fetches (${byProcess}) within ${lastFetch - firstFetch} ms at the start of wave 1, ` +
						`while ${qrStartedBeforeLastFetch} executions entered the WeChat node. n8n runs the credential's preAuthentication in every execution that read ` +
						`the credential before a token was saved, with no lock across processes; the package shares one fetch per process and account, ` +
						`so the count is bounded by the processes running executions (${c.cluster.workers.length} workers), never by executions or items. ` +
						`stable_token in normal mode answered the same token every time (${issued.length} token issued, none invalidated, ` +
						`${Object.keys(createErrcodes).join(', ')} on all ${creates.length} createTicket calls); the credential holds it, and wave 2 fetched ${figures.wave2.newTokenFetches}.`,
		);

		for (const wave of [wave1, wave2]) {
			expect(wave.rows).toHaveLength(BULK_EXECUTIONS);
			expect(wave.rows.every((r) => r.status === 'success')).toBe(true);
			expect(wave.httpOk).toBe(BULK_EXECUTIONS);
		}
		expect(itemsOk).toBe(2 * BULK_EXECUTIONS);
		expect(creates.length).toBe(2 * BULK_EXECUTIONS * BULK.itemsPerExecution);
		expect(Object.keys(createErrcodes)).toEqual(['200/ok']);
		// Spread over both workers, each execution on exactly one.
		const perExecution = [...byWorker.values()];
		expect(perExecution.every((names) => names.length === 1)).toBe(true);
		for (const worker of c.cluster.workers) expect(perExecution.some((names) => names[0] === worker.name)).toBe(true);
		// One stable token for the whole run, and at most one fetch per worker process: without a lock across
		// processes, each worker's first executions may race the other's, but never each other.
		expect(issued).toHaveLength(1);
		expect(wave1.tokenFetchesAfter).toBeGreaterThanOrEqual(1);
		expect(wave1.tokenFetchesAfter).toBeLessThanOrEqual(c.cluster.workers.length);
		expect(Object.values(figures.wave1.tokenFetchesByProcess).every((n) => n === 1)).toBe(true);
		expect(figures.wave1.credentialHoldsTheIssuedToken).toBe(true);
		expect(figures.wave2.newTokenFetches).toBe(0);
	});

	it(`2. ${PUSHES} signed scan pushes (safe mode) through the webhook process, 10 % re-sent like WeChat retries: one execution per event, none lost`, async () => {
		onTestFailed(() => {
			failed = true;
		});
		const c = need();
		const sinceId = await maxExecutionId(c.pool);
		const runTag = randomBytes(3).toString('hex');
		const plans: PushPlan[] = [];
		const scenes: string[] = [];
		for (let i = 0; i < PUSHES; i++) {
			const scene = `scan_${runTag}_${i}`;
			scenes.push(scene);
			const push = buildScanPush({
				token: PUSH_TOKEN,
				appId: c.sim.appId,
				encodingAESKey: ENCODING_AES_KEY,
				mode: 'safe',
				event: i % 2 === 0 ? 'subscribe' : 'SCAN',
				scene,
			});
			// Every 10th push is re-sent: half as soon as the first answer arrived, half 0.5-3 s later.
			const retryAfterMs = i % 10 === 5 ? (i % 20 === 5 ? 0 : 500 + ((i * 37) % 2_500)) : undefined;
			plans.push({ push, retryAfterMs });
		}
		const cpuBefore = snapshot(processGroups(c));
		say(`2. sending ${PUSHES} pushes at ${PUSH_RATE}/s, at most ${PUSH_CONCURRENCY} in flight, keep-alive`);
		const load = await runPushLoad({
			baseUrl: c.cluster.webhook.url,
			path: triggerPath(SCAN.webhookId),
			plans,
			ratePerSecond: PUSH_RATE,
			maxInFlight: PUSH_CONCURRENCY,
			onProgress: (sent) => say(`2. ... ${sent} sent`),
		});
		const answers = countBy(load.answers, (a) => `${a.status} ${a.body || a.error || ''}`.trim());

		const { waitedMs, timedOut } = await waitForExecutions(c.pool, SCAN.id, {
			expected: PUSHES,
			sinceId,
			timeoutMs: 300_000,
			pollMs: 2_000,
		});
		const cpu = delta(cpuBefore, snapshot(processGroups(c)));
		// Late extras (a retry counted as a new event) would show up within moments: look again.
		await rt.sleep(3_000);
		const finalRows = await executionsOf(c.pool, SCAN.id, { sinceId });
		const data = await executionData(c.pool, c.flatted, finalRows.map((r) => r.id));
		const seen = new Map<string, number>();
		let withoutScene = 0;
		for (const row of finalRows) {
			const scene = triggerEvent(data.get(row.id), SCAN.trigger)?.scene;
			if (typeof scene !== 'string') withoutScene++;
			else seen.set(scene, (seen.get(scene) ?? 0) + 1);
		}
		const lost = scenes.filter((scene) => !seen.has(scene));
		const duplicated = [...seen.entries()].filter(([, n]) => n > 1);
		const foreign = [...seen.keys()].filter((scene) => !scenes.includes(scene));
		const byWorker = workerOf(c.cluster, finalRows.map((r) => r.id));
		const firstCreated = Math.min(...finalRows.map((r) => new Date(r.createdAt).getTime()));
		const lastStopped = Math.max(...finalRows.map((r) => (r.stoppedAt ? new Date(r.stoppedAt).getTime() : 0)));

		const figures = {
			pushesSent: load.originals,
			retriesSent: load.retriesImmediate + load.retriesDelayed,
			retriesImmediate: load.retriesImmediate,
			retriesDelayed: load.retriesDelayed,
			deliveries: load.answers.length,
			answers,
			sendRatePerSecond: +load.achievedRate.toFixed(1),
			answerLatencyMs: Object.fromEntries(Object.entries(load.latency).map(([k, v]) => [k, Math.round(v)])),
			answersOver5s: load.answers.filter((a) => a.latencyMs > 5_000).length,
			connections: load.sockets,
			executions: finalRows.length,
			status: countBy(finalRows, (r) => r.status),
			distinctScenes: seen.size,
			lost: lost.length,
			duplicated: duplicated.length,
			foreignOrMissingScene: foreign.length + withoutScene,
			workers: distribution(byWorker),
			drainAfterLastAnswerSeconds: +(waitedMs / 1000).toFixed(1),
			executionsPerSecond: +(finalRows.length / ((lastStopped - firstCreated) / 1000)).toFixed(1),
			cpuSeconds: cpu,
			webhookCpuMsPerDelivery: +((cpu.webhook * 1000) / load.answers.length).toFixed(1),
			workerCpuMsPerExecution: +(((cpu['worker-1'] + cpu['worker-2']) * 1000) / finalRows.length).toFixed(1),
			waitTimedOut: timedOut,
		};
		report.scanPushes = figures;
		say(`2. scan pushes: ${JSON.stringify(figures, null, 2)}`);
		if (lost.length > 0) say(`2. lost scenes (first 10): ${lost.slice(0, 10).join(', ')}`);
		const notRun = finalRows.filter((r) => r.status !== 'success');
		if (notRun.length > 0) {
			say(
				`2. not successful: ${notRun.map((r) => `${r.id} ${r.status} (${(byWorker.get(r.id) ?? []).join('+') || 'never started by a worker'})`).join(', ')}. ` +
					"A 'crashed' execution no worker started is the n8n recovery race (see QUEUE_SETTINGS.recoveryIntervalMinutes in cluster.ts).",
			);
		}
		if (duplicated.length > 0) say(`2. duplicated scenes (first 10): ${JSON.stringify(duplicated.slice(0, 10))}`);

		expect(load.answers).toHaveLength(PUSHES + figures.retriesSent);
		expect(figures.retriesSent).toBe(PUSHES / 10);
		expect(answers).toEqual({ '200 success': PUSHES + figures.retriesSent });
		expect(timedOut).toBe(false);
		expect(finalRows).toHaveLength(PUSHES);
		expect(finalRows.every((r) => r.status === 'success')).toBe(true);
		expect(seen.size).toBe(PUSHES);
		expect(lost).toEqual([]);
		expect(duplicated).toEqual([]);
		expect(foreign.length + withoutScene).toBe(0);
		for (const worker of c.cluster.workers) expect([...byWorker.values()].some((names) => names[0] === worker.name)).toBe(true);
	});

	it(`3. SIGKILL of one worker while ${KILL_BATCH} scan executions run: what n8n does with them, and which accepted events survive in its records`, async () => {
		onTestFailed(() => {
			failed = true;
		});
		const c = need();
		const tokenFetchesBefore = c.sim.tokenFetches();
		const sinceId = await maxExecutionId(c.pool);
		const runTag = randomBytes(3).toString('hex');
		const scenes = Array.from({ length: KILL_BATCH }, (_, i) => `kill_${runTag}_${i}`);
		// Each execution now spends >= 4 s in its WeChat call, so the batch is still running when the worker dies.
		c.sim.addFault({ path: '/cgi-bin/qrcode/create', delayMs: SLOW_CREATE_MS });
		const load = await runPushLoad({
			baseUrl: c.cluster.webhook.url,
			path: triggerPath(SLOW_SCAN.webhookId),
			plans: scenes.map((scene, i) => ({
				push: buildScanPush({ token: PUSH_TOKEN, appId: c.sim.appId, encodingAESKey: ENCODING_AES_KEY, mode: 'safe', event: i % 2 === 0 ? 'subscribe' : 'SCAN', scene }),
			})),
			ratePerSecond: 200,
			maxInFlight: 10,
		});
		const answeredAt = Math.max(...load.answers.map((a) => a.answeredAt));

		// Kill the worker that holds the most running executions of this batch, once both hold some.
		let victim: WorkerProcess | undefined;
		let runningAtKill: string[] = [];
		let queuedAtKill = 0;
		for (let poll = 0; poll < 120 && !victim; poll++) {
			const rows = await executionsOf(c.pool, SLOW_SCAN.id, { sinceId });
			const ids = new Set(rows.map((r) => r.id));
			const running = c.cluster.workers.map((worker) => {
				const facts = readWorkerLog(worker.logFile);
				return { worker, ids: [...facts.started.keys()].filter((id) => ids.has(id) && !facts.finished.has(id)) };
			});
			if (rows.length === KILL_BATCH && running.every((r) => r.ids.length >= 2)) {
				running.sort((a, b) => b.ids.length - a.ids.length);
				victim = running[0].worker;
				runningAtKill = running[0].ids;
				queuedAtKill = rows.filter((r) => r.status === 'new').length;
				break;
			}
			await rt.sleep(250);
		}
		if (!victim) throw new Error('the batch never ran on both workers at once');
		const survivor = c.cluster.workers.find((w) => w !== victim) as WorkerProcess;
		const killedAt = Date.now();
		await killWorker(victim);
		say(`3. SIGKILL ${victim.name} (PID ${victim.child.pid}) ${killedAt - answeredAt} ms after the last push was answered; it was running executions ${runningAtKill.join(', ')}; ${queuedAtKill} still queued`);

		// Follow every execution's status in n8n's records until the dust settles: all terminal, and none left
		// 'crashed' (the process that enqueued a stalled job re-checks for 30 s, then records its own verdict).
		const timeline = new Map<string, string[]>();
		const firstSeen = new Map<string, number>();
		let rows: ExecutionRow[] = [];
		let settled = false;
		const deadline = killedAt + 180_000;
		for (let poll = 0; Date.now() < deadline && poll < 1_000; poll++) {
			rows = await executionsOf(c.pool, SLOW_SCAN.id, { sinceId });
			for (const row of rows) {
				const seq = timeline.get(row.id) ?? [];
				if (seq[seq.length - 1] !== row.status) {
					seq.push(row.status);
					timeline.set(row.id, seq);
					if (!firstSeen.has(`${row.status}`)) firstSeen.set(row.status, Date.now() - killedAt);
				}
			}
			settled = rows.length === KILL_BATCH && rows.every((r) => TERMINAL_STATUSES.includes(r.status) && r.status !== 'crashed');
			if (settled) break;
			await rt.sleep(500);
		}
		const settledAfterMs = Date.now() - killedAt;
		c.sim.clearFaults();

		const victimLog = readWorkerLog(victim.logFile);
		const survivorLog = readWorkerLog(survivor.logFile);
		const batchIds = new Set(rows.map((r) => r.id));
		const inFlight = [...victimLog.started.keys()].filter((id) => batchIds.has(id) && !victimLog.finished.has(id)).sort((a, b) => Number(a) - Number(b));
		const inFlightSet = new Set(inFlight);
		const others = rows.filter((r) => !inFlightSet.has(r.id));
		// Bull's record of the jobs that failed (kept: N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED), by execution id.
		const failedJobs = await bullFailedJobs(c.redis.port);
		const stalled = [...failedJobs.values()].filter((job) => batchIds.has(job.executionId));
		const recoveryLines = fs
			.readFileSync(c.cluster.mainLog, 'utf8')
			.split('\n')
			.filter((line) => line.includes('recovered dangling executions'));
		const verdictLines = fs
			.readFileSync(c.cluster.webhook.logFile, 'utf8')
			.replace(ANSI, '')
			.split('\n')
			.filter((line) => inFlight.some((id) => line.includes(`Problem with execution ${id}:`)));

		const data = await executionData(c.pool, c.flatted, rows.map((r) => r.id));
		const sceneOf = (id: string) => triggerEvent(data.get(id), SLOW_SCAN.trigger)?.scene as string | undefined;
		const recordedScenes = countBy(rows.filter((r) => sceneOf(r.id) !== undefined), (r) => sceneOf(r.id) as string);
		const notInRecords = scenes.filter((scene) => !(scene in recordedScenes));
		const errorOf = (id: string) => String((data.get(id)?.resultData?.error as { message?: string } | undefined)?.message ?? '');
		const inFlightRows = rows.filter((r) => inFlightSet.has(r.id));
		const followups = c.sim.requestsTo('/cgi-bin/qrcode/create').filter((r) => JSON.stringify(r.body).includes(runTag));

		// Per event: when WeChat had its answer vs. when the execution for that event stopped.
		const answeredAtByScene = new Map(load.answers.map((a) => [scenes[a.index], a.answeredAt]));
		const answerMargins = others
			.map((r) => ({ scene: sceneOf(r.id), stoppedAt: r.stoppedAt ? new Date(r.stoppedAt).getTime() : NaN }))
			.filter((x): x is { scene: string; stoppedAt: number } => typeof x.scene === 'string' && answeredAtByScene.has(x.scene))
			.map((x) => x.stoppedAt - (answeredAtByScene.get(x.scene) as number));
		// And when n8n had stored that execution: the trigger lets n8n answer only after storing and queueing it.
		const storedBeforeAnswer = others
			.map((r) => ({ scene: sceneOf(r.id), createdAt: new Date(r.createdAt).getTime() }))
			.filter((x): x is { scene: string; createdAt: number } => typeof x.scene === 'string' && answeredAtByScene.has(x.scene))
			.map((x) => (answeredAtByScene.get(x.scene) as number) - x.createdAt);
		const figures = {
			pushes: KILL_BATCH,
			answers: countBy(load.answers, (a) => `${a.status} ${a.body || a.error || ''}`.trim()),
			maxAnswerMs: Math.round(load.latency.max),
			answerBeforeOwnExecutionStoppedMs: { min: Math.round(Math.min(...answerMargins)), max: Math.round(Math.max(...answerMargins)) },
			answerAfterExecutionStoredMs: { min: Math.round(Math.min(...storedBeforeAnswer)), max: Math.round(Math.max(...storedBeforeAnswer)) },
			executionTakesAtLeastMs: SLOW_CREATE_MS,
			killed: victim.name,
			inFlightOnKilledWorker: inFlight.length,
			queuedAtKill,
			executions: rows.length,
			finalStatus: countBy(rows, (r) => r.status),
			statusTimelines: countBy(inFlightRows, (r) => (timeline.get(r.id) ?? []).join(' -> ')),
			firstSeenAfterKillSeconds: Object.fromEntries([...firstSeen.entries()].map(([status, ms]) => [status, +(ms / 1000).toFixed(1)])),
			settledAfterKillSeconds: +(settledAfterMs / 1000).toFixed(1),
			bullFailedJobsOfBatch: stalled.map((job) => `execution ${job.executionId}: ${job.failedReason}`),
			rerunBySurvivor: inFlight.filter((id) => survivorLog.started.has(id)).length,
			othersRunBySurvivor: others.filter((r) => survivorLog.started.has(r.id)).length,
			othersFinishedByKilledWorker: others.filter((r) => victimLog.finished.has(r.id)).length,
			othersStatus: countBy(others, (r) => r.status),
			inFlightError: countBy(inFlightRows, (r) => errorOf(r.id).slice(0, 80) || '(none)'),
			mainRecoveryLog: recoveryLines.map((line) => line.replace(ANSI, '').trim()).slice(-2),
			webhookProcessVerdicts: verdictLines.length,
			eventsInN8nRecords: Object.keys(recordedScenes).length,
			eventsNoLongerInN8nRecords: notInRecords.length,
			createTicketCallsForThisBatch: followups.length,
			newTokenFetches: c.sim.tokenFetches() - tokenFetchesBefore,
			settled,
		};
		report.workerKill = figures;
		say(`3. worker kill: ${JSON.stringify(figures, null, 2)}`);
		const recoveryNote =
			QUEUE_SETTINGS.recoveryIntervalMinutes === undefined
				? "n8n's default 180, so it did not run during this test; with QUEUE_RECOVERY_MINUTES=0.25 earlier runs saw 'running -> crashed -> error', same end state"
				: `${QUEUE_SETTINGS.recoveryIntervalMinutes} here, default 180`;
		say(
			`3. what n8n 2.41.1 does (observed here, and in its source): Bull runs with maxStalledCount 0 (hard-coded in ScalingService.setupQueue; ` +
				`QUEUE_WORKER_MAX_STALLED_COUNT was removed in 2.0), so the ${inFlight.length} executions the killed worker held were NOT handed to the other ` +
				`worker (${figures.rerunBySurvivor} re-run). Once their lock ran out (QUEUE_WORKER_LOCK_DURATION=${QUEUE_SETTINGS.lockDurationMs} ms here, default 60 s) ` +
				`the survivor's stalled check (QUEUE_WORKER_STALLED_INTERVAL=${QUEUE_SETTINGS.stalledIntervalMs} ms, default 30 s) failed their Bull jobs ("job stalled more ` +
				`than allowable limit"). Two n8n mechanisms can then act: the main's queue recovery (every N8N_EXECUTIONS_QUEUE_RECOVERY_INTERVAL minutes, ${recoveryNote}) ` +
				`marks executions without a live job 'crashed', keeping their data; the process that enqueued them (here the webhook process, waiting on ` +
				`job.finished()) re-reads the status for up to 30 s unless it is already terminal ('crashed' is), and then stores status 'error' ("This execution failed to be ` +
				`processed too many times and will no longer retry") with an EMPTY run, over 'crashed' too. That overwrites the trigger item, i.e. the WeChat event, so a retry ` +
				`has nothing to run (only during the short 'crashed' window could one retry it). Result: ${figures.eventsInN8nRecords} of ${KILL_BATCH} accepted events are in ` +
				`n8n's records (the queued ones ran on the surviving worker), ${notInRecords.length} are gone from them, each leaving one 'error' execution as the trace ` +
				`(status timelines: ${JSON.stringify(figures.statusTimelines)}). What the package adds: the trigger answered "success" within ${figures.maxAnswerMs} ms, ` +
				`each answer ${figures.answerAfterExecutionStoredMs.min}-${figures.answerAfterExecutionStoredMs.max} ms after n8n had stored and queued its execution (n8n sends ` +
				`the trigger's answer only then, so "success" means n8n holds the event) and ${figures.answerBeforeOwnExecutionStoppedMs.min}-` +
				`${figures.answerBeforeOwnExecutionStoppedMs.max} ms before that execution finished; WeChat does not retry and no event is duplicated. An execution ` +
				`lost with its worker is n8n's recovery domain, and n8n 2.41.1 does not recover it.`,
		);

		// WeChat's view: every push answered, before the executions ran.
		expect(figures.answers).toEqual({ '200 success': KILL_BATCH });
		// Each push was answered after n8n stored its execution, and before that execution finished.
		expect(storedBeforeAnswer.length).toBe(others.length);
		expect(Math.min(...storedBeforeAnswer)).toBeGreaterThanOrEqual(0);
		expect(answerMargins.length).toBe(others.length);
		expect(Math.min(...answerMargins)).toBeGreaterThan(0);
		expect(settled).toBe(true);
		// One execution per accepted event, none duplicated by the kill.
		expect(rows).toHaveLength(KILL_BATCH);
		expect(Object.values(recordedScenes).every((n) => n === 1)).toBe(true);
		// Everything the killed worker had not taken ran to success (mostly on the survivor).
		expect(inFlight.length).toBeGreaterThanOrEqual(1);
		expect(others.every((r) => r.status === 'success')).toBe(true);
		expect(others.every((r) => survivorLog.started.has(r.id) || victimLog.finished.has(r.id))).toBe(true);
		expect(others.every((r) => typeof sceneOf(r.id) === 'string')).toBe(true);
		// What the killed worker held: its Bull jobs failed as stalled, nobody re-ran them...
		expect(new Set(stalled.map((job) => job.executionId))).toEqual(inFlightSet);
		for (const job of stalled) expect(job.failedReason).toMatch(/stalled/);
		expect(figures.rerunBySurvivor).toBe(0);
		// ...and n8n 2.41.1 ends them as 'error' with its stall message and without the event.
		expect(inFlightRows.every((r) => r.status === 'error')).toBe(true);
		expect(inFlightRows.every((r) => /failed to be processed too many times/.test(errorOf(r.id)))).toBe(true);
		expect(inFlightRows.every((r) => sceneOf(r.id) === undefined)).toBe(true);
		expect(notInRecords).toHaveLength(inFlight.length);
		expect(figures.newTokenFetches).toBe(0);
	});
});
