/**
 * Child process of benchmark 2: runs one bulk create + image batch through the real node in a fresh
 * process, so the RSS it reports belongs to this batch alone (not to the simulator, which renders and
 * caches the JPEGs in the parent, nor to what earlier benchmarks left on the heap).
 *
 * Input (IPC): WorkerRequest. Output (IPC): WorkerReport. The binary data mode is set up through
 * n8n-core's own DI container: n8n-core has nested copies of @n8n/di, and only its copy counts.
 */
// Must stay the first import: see the file.
import './lib/asShipped';

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { BinaryDataConfig, BinaryDataService } from 'n8n-core';
import type { INodeCredentialsDetails, INodeExecutionData } from 'n8n-workflow';

import { CredentialStore, runNode } from '../helpers/n8nHarness';

export type BinaryMode = 'default' | 'filesystem';

export interface WorkerRequest {
	mode: BinaryMode;
	n: number;
	concurrency: number;
	warmupItems: number;
	apiBaseUrl: string;
	mpBaseUrl: string;
	appId: string;
	appSecret: string;
}

export interface WorkerReport {
	mode: BinaryMode;
	n: number;
	wallMs: number;
	baselineRss: number;
	/** Highest RSS during the batch: the kernel's high-water mark when the batch set a new one, else the sampled peak. */
	peakRss: number;
	sampledPeakRss: number;
	samples: number;
	/** RSS after the batch and a GC, with the output items still referenced. */
	retainedRss: number;
	peakHeapUsed: number;
	peakExternal: number;
	imageBytes: number;
	itemsOk: number;
	/** Filesystem mode: how many binaries point to a file that exists. */
	filesOnDisk: number;
	gcAvailable: boolean;
}

const SAMPLE_INTERVAL_MS = 10;

const requireFromCore = createRequire(require.resolve('n8n-core'));
const { Container } = requireFromCore('@n8n/di') as typeof import('@n8n/di');

const gc = (globalThis as { gc?: () => void }).gc;

function collect(): void {
	// Twice: the first pass may only finalise what the second one frees.
	gc?.();
	gc?.();
}

async function initBinaryData(mode: BinaryMode, storagePath: string): Promise<BinaryDataService> {
	const config = Container.get(BinaryDataConfig);
	config.mode = mode;
	config.localStoragePath = storagePath;
	const service = Container.get(BinaryDataService);
	await service.init();
	return service;
}

function runBatch(request: WorkerRequest, store: CredentialStore, credential: INodeCredentialsDetails, n: number, offset: number) {
	return runNode({
		store,
		credential,
		items: Array.from({ length: n }, (_, i) => ({ json: { channel: `poster_${offset + i}` } })),
		parameters: {
			resource: 'qrCode',
			operation: 'createTicket',
			qrType: 'temporary',
			sceneType: 'string',
			sceneStr: '={{ $json.channel }}',
			expireSeconds: 86_400,
			options: { downloadImage: true, concurrency: request.concurrency },
		},
	});
}

async function measure(request: WorkerRequest): Promise<WorkerReport> {
	const storagePath = mkdtempSync(path.join(os.tmpdir(), 'wechat-bench-binary-'));
	try {
		const service = await initBinaryData(request.mode, storagePath);
		const store = new CredentialStore();
		const credential = store.add('bench', 'weChatOfficialAccountApi', {
			appId: request.appId,
			appSecret: request.appSecret,
			apiBaseUrl: request.apiBaseUrl,
			mpBaseUrl: request.mpBaseUrl,
		});

		// Warm-up: loads the lazily required modules (HTTP client, file-type, …) before the baseline.
		const warmup = await runBatch(request, store, credential, request.warmupItems, 1_000_000);
		if (warmup.error) throw new Error(`warm-up failed: ${warmup.error.message}`);

		collect();
		const baselineRss = process.memoryUsage().rss;
		const maxRssBeforeKiB = process.resourceUsage().maxRSS;
		let sampledPeakRss = baselineRss;
		let peakHeapUsed = 0;
		let peakExternal = 0;
		let samples = 0;
		const sampler = setInterval(() => {
			const usage = process.memoryUsage();
			samples++;
			if (usage.rss > sampledPeakRss) sampledPeakRss = usage.rss;
			if (usage.heapUsed > peakHeapUsed) peakHeapUsed = usage.heapUsed;
			if (usage.external > peakExternal) peakExternal = usage.external;
		}, SAMPLE_INTERVAL_MS);

		const started = performance.now();
		const result = await runBatch(request, store, credential, request.n, 0);
		const wallMs = performance.now() - started;
		clearInterval(sampler);
		const maxRssAfterKiB = process.resourceUsage().maxRSS;
		if (result.error) throw new Error(`the node failed: ${result.error.message}`);

		// Measured while the output is still referenced (it is read below), as the next node would hold it.
		collect();
		const retainedRss = process.memoryUsage().rss;

		const items: INodeExecutionData[] = result.items ?? [];
		let imageBytes = 0;
		let itemsOk = 0;
		let filesOnDisk = 0;
		for (const [i, item] of items.entries()) {
			const binary = item.binary?.data;
			if (item.json.scene !== `poster_${i}` || !binary || binary.mimeType !== 'image/jpeg' || !binary.bytes) continue;
			itemsOk++;
			imageBytes += binary.bytes;
			if (binary.id && existsSync(service.getPath(binary.id))) filesOnDisk++;
		}
		// maxRSS is in KiB. Only when the batch raised the high-water mark is that mark the batch's peak.
		const kernelPeak = maxRssAfterKiB > maxRssBeforeKiB ? maxRssAfterKiB * 1024 : 0;
		return {
			mode: request.mode,
			n: request.n,
			wallMs,
			baselineRss,
			peakRss: Math.max(sampledPeakRss, kernelPeak),
			sampledPeakRss,
			samples,
			retainedRss,
			peakHeapUsed,
			peakExternal,
			imageBytes,
			itemsOk,
			filesOnDisk,
			gcAvailable: gc !== undefined,
		};
	} finally {
		rmSync(storagePath, { recursive: true, force: true });
	}
}

process.once('message', (request: WorkerRequest) => {
	measure(request).then(
		(report) => process.send?.({ ok: true, report }, () => process.exit(0)),
		(error: unknown) => process.send?.({ ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) }, () => process.exit(1)),
	);
});
