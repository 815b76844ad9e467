/**
 * n8n 2.41.1 in queue mode on Redis + PostgreSQL: one main (`n8n start`), one webhook process
 * (`n8n webhook`) and two workers (`n8n worker`), each with its own user folder (crash journal and event
 * log files are per folder) holding this package linked as an installed community package, all sharing the
 * encryption key, the database and the Bull queue. Built on scripts/n8n-runtime.mjs (not edited here).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { PostgresServer, RedisServer } from './services';
import { rt, type Instance, type Runtime, type TrackedChild } from './runtime';

export { rt, type Instance, type Runtime, type TrackedChild };

/** Short enough for the kill scenario to finish within a minute, long enough not to stall a busy worker. */
export const QUEUE_SETTINGS = {
	lockDurationMs: 20_000,
	lockRenewMs: 5_000,
	stalledIntervalMs: 5_000,
	/**
	 * N8N_EXECUTIONS_QUEUE_RECOVERY_INTERVAL in minutes; n8n's default (180) unless QUEUE_RECOVERY_MINUTES is set.
	 * Not shortened by default: the main's recovery check reads the database and then Bull's active + waiting
	 * jobs non-atomically, so a check that runs while executions are being enqueued can mark a just-enqueued one
	 * 'crashed', and a worker skips a crashed execution without running it (seen once in 2,000 pushes with a 15 s
	 * interval). With the default the check runs at the main's start and then every 3 hours.
	 */
	recoveryIntervalMinutes: process.env.QUEUE_RECOVERY_MINUTES ? Number(process.env.QUEUE_RECOVERY_MINUTES) : undefined,
	workerConcurrency: 10,
};

export interface WorkerProcess {
	name: string;
	instance: Instance;
	child: TrackedChild;
	healthPort: number;
	logFile: string;
	killed: boolean;
}

export interface Cluster {
	main: Instance;
	mainLog: string;
	webhook: { instance: Instance; child: TrackedChild; logFile: string; url: string };
	workers: WorkerProcess[];
	apiKey: string;
	/** Stops the n8n processes (workers and webhook first, then main). Idempotent. */
	stop(): Promise<void>;
}

export function queueEnv(pg: PostgresServer, redis: RedisServer): Record<string, string> {
	return {
		EXECUTIONS_MODE: 'queue',
		DB_TYPE: 'postgresdb',
		DB_POSTGRESDB_HOST: '127.0.0.1',
		DB_POSTGRESDB_PORT: String(pg.port),
		DB_POSTGRESDB_DATABASE: pg.database,
		DB_POSTGRESDB_USER: pg.user,
		DB_POSTGRESDB_PASSWORD: pg.password,
		DB_POSTGRESDB_SCHEMA: 'public',
		DB_POSTGRESDB_POOL_SIZE: '10',
		QUEUE_BULL_REDIS_HOST: '127.0.0.1',
		QUEUE_BULL_REDIS_PORT: String(redis.port),
		QUEUE_WORKER_LOCK_DURATION: String(QUEUE_SETTINGS.lockDurationMs),
		QUEUE_WORKER_LOCK_RENEW_TIME: String(QUEUE_SETTINGS.lockRenewMs),
		QUEUE_WORKER_STALLED_INTERVAL: String(QUEUE_SETTINGS.stalledIntervalMs),
		...(QUEUE_SETTINGS.recoveryIntervalMinutes === undefined ? {} : { N8N_EXECUTIONS_QUEUE_RECOVERY_INTERVAL: String(QUEUE_SETTINGS.recoveryIntervalMinutes) }),
		// Keep failed Bull jobs (default 0 = removed) so the test can read why a job failed.
		N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED: '1000',
		EXECUTIONS_DATA_PRUNE: 'false',
		N8N_GRACEFUL_SHUTDOWN_TIMEOUT: '5',
		N8N_LOG_LEVEL: 'info',
		N8N_LOG_OUTPUT: 'console',
		N8N_WORKER_SERVER_ADDRESS: '127.0.0.1',
	};
}

async function httpStatus(url: string): Promise<number> {
	try {
		const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
		await response.arrayBuffer();
		return response.status;
	} catch {
		return 0;
	}
}

function tailOf(file: string, lines = 40): string {
	try {
		return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
	} catch {
		return '(no log)';
	}
}

async function waitReady(label: string, child: TrackedChild, url: string, logFile: string, timeoutMs = 240_000): Promise<number> {
	const started = Date.now();
	for (let attempt = 0; ; attempt++) {
		if (child.exitCode !== null || child.signalCode !== null) {
			throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before it was ready; ${logFile}:\n${tailOf(logFile)}`);
		}
		if ((await httpStatus(url)) === 200) return Date.now() - started;
		if (Date.now() - started > timeoutMs || attempt > timeoutMs / 250) {
			throw new Error(`${label} not ready after ${Math.round(timeoutMs / 1000)} s; ${logFile}:\n${tailOf(logFile)}`);
		}
		await rt.sleep(500);
	}
}

function spawnN8n(instance: Instance, args: string[], logFile: string, label: string, extra: Record<string, string>): TrackedChild {
	const out = fs.openSync(logFile, 'a');
	try {
		return rt.spawnTracked(
			instance.runtime.nodeBin,
			[instance.runtime.n8nBin, ...args],
			{ cwd: instance.userFolder, env: instance.env({ extra }), stdio: ['ignore', out, out] },
			label,
		);
	} finally {
		fs.closeSync(out);
	}
}

export interface StartClusterOptions {
	runtime: Runtime;
	dir: string;
	encryptionKey: string;
	env: Record<string, string>;
	/** Imported and published before `n8n start` (a running main does not see CLI publications). */
	credentials: unknown[];
	workflows: Array<{ id: string }>;
}

export async function startCluster(options: StartClusterOptions): Promise<Cluster> {
	const { runtime, dir, encryptionKey, env } = options;
	const stops: Array<() => Promise<void>> = [];
	let stopped = false;
	const stop = async (): Promise<void> => {
		if (stopped) return;
		stopped = true;
		for (const fn of stops.reverse()) {
			try {
				await fn();
			} catch (error) {
				rt.log(`stopping: ${(error as Error).message}`);
			}
		}
	};

	let started = false;
	try {
		const main = await rt.createInstance(runtime, { userFolder: path.join(dir, 'main'), port: await rt.getFreePort(), encryptionKey, env });
		const mainLog = path.join(dir, 'main.log');

		let t = Date.now();
		await rt.importCredential(main, options.credentials);
		await rt.importWorkflow(main, options.workflows);
		for (const workflow of options.workflows) await rt.publishWorkflow(main, workflow.id);
		rt.log(`credential + ${options.workflows.length} workflows imported and published into Postgres in ${Math.round((Date.now() - t) / 1000)} s`);

		t = Date.now();
		await rt.startN8n(main, { logFile: mainLog, readyTimeoutMs: 240_000 });
		stops.push(() => rt.stopN8n(main));
		// A throwaway owner for the public API key (retries and reads); the password only lives for this run.
		const cookie = await rt.setupOwner(main, { email: 'queue-test@example.com', password: `Qm-${randomBytes(12).toString('base64url')}-9a` });
		const apiKey = await rt.createApiKey(main, cookie);

		// The webhook process and both workers start together (each takes 15-40 s on 2 cores).
		const webhookInstance = await rt.createInstance(runtime, { userFolder: path.join(dir, 'webhook'), port: await rt.getFreePort(), encryptionKey, env });
		const webhookLog = path.join(dir, 'webhook.log');
		const webhookChild = spawnN8n(webhookInstance, ['webhook'], webhookLog, 'n8n webhook', {});
		stops.push(() => rt.stopProcess(webhookChild, { graceMs: 10_000 }));

		const workers: WorkerProcess[] = [];
		for (const name of ['worker-1', 'worker-2']) {
			const instance = await rt.createInstance(runtime, { userFolder: path.join(dir, name), port: await rt.getFreePort(), encryptionKey, env });
			const healthPort = await rt.getFreePort();
			const logFile = path.join(dir, `${name}.log`);
			const child = spawnN8n(instance, ['worker', `--concurrency=${QUEUE_SETTINGS.workerConcurrency}`], logFile, `n8n ${name}`, {
				QUEUE_HEALTH_CHECK_ACTIVE: 'true',
				QUEUE_HEALTH_CHECK_PORT: String(healthPort),
			});
			const worker: WorkerProcess = { name, instance, child, healthPort, logFile, killed: false };
			workers.push(worker);
			stops.push(() => rt.stopProcess(child, { graceMs: 10_000 }));
		}

		const readyMs = await Promise.all([
			waitReady('n8n webhook', webhookChild, `${webhookInstance.baseUrl}/healthz/readiness`, webhookLog),
			...workers.map((worker) => waitReady(`n8n ${worker.name}`, worker.child, `http://127.0.0.1:${worker.healthPort}/healthz/readiness`, worker.logFile)),
		]);
		rt.log(
			`queue mode up in ${Math.round((Date.now() - t) / 1000)} s: main ${main.baseUrl} (PID ${main.server?.pid}), webhook ${webhookInstance.baseUrl} (PID ${webhookChild.pid}, ready in ${Math.round(readyMs[0] / 1000)} s), ` +
				workers.map((w, i) => `${w.name} PID ${w.child.pid} health :${w.healthPort} (ready in ${Math.round(readyMs[i + 1] / 1000)} s)`).join(', '),
		);

		const cluster: Cluster = {
			main,
			mainLog,
			webhook: { instance: webhookInstance, child: webhookChild, logFile: webhookLog, url: webhookInstance.baseUrl },
			workers,
			apiKey,
			stop,
		};
		started = true;
		return cluster;
	} finally {
		// Whatever did start is stopped again when the cluster could not be brought up.
		if (!started) await stop();
	}
}

/** SIGKILL to the worker's whole process group (the worker and its task runner), like a node or pod dying. */
export async function killWorker(worker: WorkerProcess): Promise<void> {
	worker.killed = true;
	await rt.stopProcess(worker.child, { signal: 'SIGKILL', graceMs: 1_000 });
}

// ---------------------------------------------------------------------------------------------------------
// What the workers wrote in their logs

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

export interface WorkerLogFacts {
	started: Map<string, string>;
	finished: Map<string, string>;
}

/** Execution id → job id, from "Worker started execution <id> (job <job>)" / "Worker finished execution ...". */
export function readWorkerLog(logFile: string): WorkerLogFacts {
	const started = new Map<string, string>();
	const finished = new Map<string, string>();
	let text = '';
	try {
		text = fs.readFileSync(logFile, 'utf8').replace(ANSI, '');
	} catch {
		/* not written yet */
	}
	for (const match of text.matchAll(/Worker (started|finished) execution (\d+) \(job (\d+)\)/g)) {
		(match[1] === 'started' ? started : finished).set(match[2], match[3]);
	}
	return { started, finished };
}

export function logTail(file: string, lines = 40): string {
	return tailOf(file, lines);
}
