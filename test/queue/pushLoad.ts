/**
 * Sends pre-built WeChat pushes at a steady rate with bounded concurrency over keep-alive connections, and
 * re-sends a chosen subset like WeChat's retries (the identical request: same query, same body), some right
 * after the first answer and some after a short delay.
 */
import http from 'node:http';

import type { BuiltScanPush } from '../simulator/push';
import { percentile } from './records';

export interface PushPlan {
	push: BuiltScanPush;
	/** undefined: no retry; 0: re-sent as soon as the first answer arrived; > 0: re-sent after that many ms. */
	retryAfterMs?: number;
}

export interface PushAnswer {
	index: number;
	retry: boolean;
	status: number;
	body: string;
	latencyMs: number;
	/** Wall clock when the answer was complete. */
	answeredAt: number;
	error?: string;
}

export interface PushLoadResult {
	answers: PushAnswer[];
	originals: number;
	retriesImmediate: number;
	retriesDelayed: number;
	durationMs: number;
	/** Originals per second over the sending window. */
	achievedRate: number;
	latency: { p50: number; p95: number; p99: number; max: number };
	maxInFlightSeen: number;
	sockets: number;
}

class Semaphore {
	private waiting: Array<() => void> = [];

	inUse = 0;

	constructor(private readonly size: number) {}

	async acquire(): Promise<void> {
		if (this.inUse < this.size) {
			this.inUse++;
			return;
		}
		await new Promise<void>((resolve) => this.waiting.push(resolve));
	}

	release(): void {
		const next = this.waiting.shift();
		if (next) next();
		else this.inUse--;
	}
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runPushLoad(options: {
	baseUrl: string;
	path: string;
	plans: PushPlan[];
	ratePerSecond: number;
	maxInFlight: number;
	timeoutMs?: number;
	onProgress?: (sent: number) => void;
}): Promise<PushLoadResult> {
	const { plans, ratePerSecond, maxInFlight } = options;
	const timeoutMs = options.timeoutMs ?? 30_000;
	const target = new URL(options.baseUrl);
	const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight, maxFreeSockets: maxInFlight });
	const sockets = new Set<unknown>();
	agent.on('free', (socket) => sockets.add(socket));
	const semaphore = new Semaphore(maxInFlight);
	const answers: PushAnswer[] = [];
	let maxInFlightSeen = 0;

	const send = (index: number, retry: boolean): Promise<PushAnswer> =>
		new Promise((resolve) => {
			const { push } = plans[index];
			const query = new URLSearchParams(push.query).toString();
			const body = Buffer.from(push.body, 'utf8');
			const started = performance.now();
			const finish = (status: number, text: string, error?: string) => {
				const answer: PushAnswer = { index, retry, status, body: text, latencyMs: performance.now() - started, answeredAt: Date.now(), error };
				answers.push(answer);
				resolve(answer);
			};
			const req = http.request(
				{
					host: target.hostname,
					port: target.port,
					method: 'POST',
					path: `${options.path}?${query}`,
					agent,
					headers: { 'Content-Type': 'text/xml', 'Content-Length': body.length, 'User-Agent': 'Mozilla/4.0' },
					timeout: timeoutMs,
				},
				(res) => {
					const chunks: Buffer[] = [];
					res.on('data', (chunk: Buffer) => chunks.push(chunk));
					res.on('end', () => finish(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
					res.on('error', (error) => finish(0, '', error.message));
				},
			);
			req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
			req.on('error', (error) => finish(0, '', error.message));
			req.end(body);
		});

	const guarded = async (index: number, retry: boolean): Promise<PushAnswer> => {
		await semaphore.acquire();
		maxInFlightSeen = Math.max(maxInFlightSeen, semaphore.inUse);
		try {
			return await send(index, retry);
		} finally {
			semaphore.release();
		}
	};

	const pending: Array<Promise<unknown>> = [];
	let retriesImmediate = 0;
	let retriesDelayed = 0;
	const intervalMs = 1000 / ratePerSecond;
	const started = performance.now();
	for (let i = 0; i < plans.length; i++) {
		const due = started + i * intervalMs;
		const wait = due - performance.now();
		if (wait > 1) await sleep(wait);
		// Bounded concurrency: wait for a slot before starting (the rate then drops rather than piling up).
		await semaphore.acquire();
		semaphore.release();
		const { retryAfterMs } = plans[i];
		pending.push(
			guarded(i, false).then(async () => {
				if (retryAfterMs === undefined) return;
				if (retryAfterMs === 0) retriesImmediate++;
				else {
					retriesDelayed++;
					await sleep(retryAfterMs);
				}
				await guarded(i, true);
			}),
		);
		if (i % 250 === 249) options.onProgress?.(i + 1);
	}
	const sendingMs = performance.now() - started;
	await Promise.all(pending);
	const durationMs = performance.now() - started;
	agent.destroy();

	const latencies = answers.map((answer) => answer.latencyMs);
	return {
		answers,
		originals: plans.length,
		retriesImmediate,
		retriesDelayed,
		durationMs,
		achievedRate: plans.length / (sendingMs / 1000),
		latency: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: Math.max(...latencies) },
		maxInFlightSeen,
		sockets: sockets.size,
	};
}
