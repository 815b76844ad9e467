/**
 * Benchmark 2, bulk create + image: N tickets with `options.downloadImage` through the real node, in n8n's
 * in-memory binary mode ('default') and in filesystem mode, each batch in a fresh child process
 * (bulkImageWorker.ts) whose RSS is sampled every ~10 ms. The simulator stays in this process.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startSimulator } from '../simulator';
import type { BinaryMode, WorkerReport, WorkerRequest } from './bulkImageWorker';
import { atMost, progress, round, type BenchmarkResult } from './lib/report';

export interface BulkImageOptions {
	n: number;
	latencyMs: number;
	concurrency: number;
}

const RSS_GROWTH_LIMIT_MB = 150;
const WARMUP_ITEMS = 5;
const MB = 1024 * 1024;

function runWorker(request: WorkerRequest, userFolder: string): Promise<WorkerReport> {
	// Node flags as this process got them (tsx's loader), plus --expose-gc for the baseline.
	const execArgv = process.execArgv.includes('--expose-gc') ? process.execArgv : [...process.execArgv, '--expose-gc'];
	// A separate process is the point: its RSS is the batch's alone. (The rule is for node code.)
	// eslint-disable-next-line @n8n/community-nodes/no-dangerous-functions
	const child = fork(path.join(__dirname, 'bulkImageWorker.ts'), [], {
		execArgv,
		// n8n-core's InstanceSettings reads (and may create) <N8N_USER_FOLDER>/.n8n/config: keep it out of $HOME.
		env: { ...process.env, N8N_USER_FOLDER: userFolder },
		stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
	});
	return new Promise((resolve, reject) => {
		let answered = false;
		child.once('message', (message: { ok: true; report: WorkerReport } | { ok: false; error: string }) => {
			answered = true;
			if (message.ok) resolve(message.report);
			else reject(new Error(`benchmark 2 worker (${request.mode}) failed: ${message.error}`));
		});
		child.once('exit', (code) => {
			if (!answered) reject(new Error(`benchmark 2 worker (${request.mode}) exited with ${code} without a report`));
		});
		child.send(request);
	});
}

export async function benchBulkImage(options: BulkImageOptions): Promise<BenchmarkResult> {
	const { n, latencyMs, concurrency } = options;
	// Images get the same latency as API calls: showqrcode is another WeChat host across the same network.
	const sim = await startSimulator({ latencyMs, imageLatencyMs: latencyMs });
	const userFolder = mkdtempSync(path.join(os.tmpdir(), 'wechat-bench-n8n-'));
	const reports: WorkerReport[] = [];
	try {
		for (const mode of ['default', 'filesystem'] as BinaryMode[]) {
			progress(`benchmark 2: ${n} tickets + images, binary mode ${mode} (child process)`);
			sim.reset();
			reports.push(
				await runWorker(
					{ mode, n, concurrency, warmupItems: WARMUP_ITEMS, apiBaseUrl: sim.apiBaseUrl, mpBaseUrl: sim.mpBaseUrl, appId: sim.appId, appSecret: sim.appSecret },
					userFolder,
				),
			);
		}
	} finally {
		await sim.close();
		rmSync(userFolder, { recursive: true, force: true });
	}

	const idealMs = (n * 2 * latencyMs) / concurrency;
	const growthMb = (r: WorkerReport) => (r.peakRss - r.baselineRss) / MB;
	const label = (mode: BinaryMode) => (mode === 'default' ? "in memory ('default')" : 'filesystem');
	const notes = [
		`Each batch runs in a fresh child process: baseline RSS after a ${WARMUP_ITEMS}-item warm-up batch and a GC${reports.every((r) => r.gcAvailable) ? '' : ' (GC was NOT available: run with --expose-gc)'}; peak = the higher of the ~10 ms samples and the kernel's high-water mark (getrusage maxRSS) when the batch raised it.`,
		`Simulator latency ${latencyMs} ms on qrcode/create and on showqrcode; ideal = N × 2 × latency / concurrency = ${round(idealMs / 1000, 2)} s. The simulator (JPEG rendering, image cache) runs in the parent process and is not counted.`,
		"'default' is n8n's in-memory mode: every image stays in its output item as base64 (the retained column shows it). n8n-core 2.41's own configuration defaults to filesystem mode (database in queue mode) unless N8N_DEFAULT_BINARY_DATA_MODE says otherwise.",
	];
	for (const r of reports) {
		if (r.itemsOk !== r.n) notes.push(`${label(r.mode)}: only ${r.itemsOk} of ${r.n} items carried their JPEG.`);
		if (r.mode === 'filesystem' && r.filesOnDisk !== r.n) notes.push(`filesystem: only ${r.filesOnDisk} of ${r.n} binaries had their file on disk.`);
	}

	return {
		id: 2,
		title: `Bulk create + image: ${n} tickets with downloadImage, ${latencyMs} ms latency, concurrency ${concurrency}`,
		tables: [
			{
				title: 'Results',
				columns: ['Binary mode', 'N', 'Wall (s)', 'Wall / ideal', 'Baseline RSS (MB)', 'Peak RSS (MB)', 'Peak growth (MB)', 'Retained after GC (MB)', 'Peak heap used (MB)', 'Image bytes (MB)', 'Items OK', 'RSS samples'],
				rows: reports.map((r) => [
					label(r.mode),
					r.n,
					round(r.wallMs / 1000, 2),
					round(r.wallMs / idealMs, 2),
					round(r.baselineRss / MB, 1),
					round(r.peakRss / MB, 1),
					round(growthMb(r), 1),
					round((r.retainedRss - r.baselineRss) / MB, 1),
					round(r.peakHeapUsed / MB, 1),
					round(r.imageBytes / MB, 2),
					r.itemsOk,
					r.samples,
				]),
			},
		],
		targets: reports.map((r) => atMost(`peak RSS growth < ${RSS_GROWTH_LIMIT_MB} MB for ${n} images, ${label(r.mode)}`, growthMb(r), RSS_GROWTH_LIMIT_MB, ' MB')),
		notes,
		data: { n, latencyMs, concurrency, idealMs, reports },
	};
}
