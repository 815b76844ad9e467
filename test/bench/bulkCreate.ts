/**
 * Benchmark 1, bulk create: N temporary tickets through the real WeChat QR Code node (n8n-core's
 * WorkflowExecute, via the test harness) against the simulator with 50 ms injected latency, next to the
 * one-at-a-time loops peer packages use, in the same run against the same simulator.
 */
import { performance } from 'node:perf_hooks';

import { retryTiming } from '../../nodes/shared/retryPolicy';
import { CredentialStore, n8nHttpClient, runNode } from '../helpers/n8nHarness';
import { atLeast, atMost, exactly, progress, round, type BenchmarkResult } from './lib/report';
import { startSimulatorProcess, type SimulatorProcess } from './lib/simulatorProcess';

export interface BulkCreateOptions {
	n: number;
	/** Items for the fresh-token-per-call loop; the full N takes about 2 × N × latency. */
	freshTokenN: number;
	latencyMs: number;
	concurrency: number;
}

interface Measured {
	label: string;
	n: number;
	wallMs: number;
	/** CPU time of this process (the simulator runs in another one) while the contender ran. */
	cpuMs: number;
	tokenFetches: number;
	/** qrcode/create calls the simulator saw (retries included). */
	createCalls: number;
	ok: number;
}

const EXPIRE_SECONDS = 86_400;
/**
 * Items the node and n8n's HTTP client each run before the measurements, so that V8 has optimised their hot
 * paths as in a long-running n8n. With 20, the node (measured first) ran its 2,000 items at 2.7 ms of CPU
 * per item and 1.42 × the ideal, against 1.5–1.8 ms and 1.28–1.34 × in the same process right after.
 */
const WARM_UP_ITEMS = 1_000;
/** The plain loops spend their time waiting for the latency; a few items load their code. */
const WARM_UP_LOOP_ITEMS = 20;
/**
 * Rounds of the two contenders at concurrency 10 (the node and (b')), alternating, the order swapped every
 * round; the targets take the node's median round. One batch each had decided the targets: the first
 * 2,000-item batch after the warm-up ran at 1.3–1.5 ms of CPU per item, the batches after it at 1.1–1.2 ms
 * (2026-12-08), so a single sample moved the verdict by itself.
 */
const ROUNDS = 3;
const sceneOf = (i: number) => `campaign_${i}`;

async function measure(sim: SimulatorProcess, label: string, n: number, run: () => Promise<number>): Promise<Measured> {
	progress(`benchmark 1: ${label}, N = ${n}`);
	await sim.reset();
	const started = performance.now();
	const cpuBefore = process.cpuUsage();
	const ok = await run();
	const cpu = process.cpuUsage(cpuBefore);
	const wallMs = performance.now() - started;
	return { label, n, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, tokenFetches: await sim.tokenFetches(), createCalls: await sim.requestCount('/cgi-bin/qrcode/create'), ok };
}

async function measureOnOwnSimulator(latencyMs: number, label: string, n: number, run: (sim: SimulatorProcess) => Promise<number>): Promise<Measured> {
	const sim = await startSimulatorProcess({ latencyMs });
	try {
		return await measure(sim, label, n, () => run(sim));
	} finally {
		await sim.close();
	}
}

/** The round with the median wall time (of an odd number of rounds, one of them). */
function medianRound(rounds: Measured[], label: string): Measured {
	const sorted = [...rounds].sort((a, b) => a.wallMs - b.wallMs);
	return { ...sorted[(sorted.length - 1) >> 1], label };
}

/** The node as a campaign workflow uses it: one item per channel, the scene from an expression. */
async function runNodeBatch(sim: SimulatorProcess, n: number, concurrency: number): Promise<number> {
	const store = new CredentialStore();
	const credential = store.add('bench', 'weChatOfficialAccountApi', {
		appId: sim.appId,
		appSecret: sim.appSecret,
		apiBaseUrl: sim.apiBaseUrl,
		mpBaseUrl: sim.mpBaseUrl,
	});
	const result = await runNode({
		store,
		credential,
		items: Array.from({ length: n }, (_, i) => ({ json: { channel: sceneOf(i) } })),
		parameters: {
			resource: 'qrCode',
			operation: 'createTicket',
			qrType: 'temporary',
			sceneType: 'string',
			sceneStr: '={{ $json.channel }}',
			expireSeconds: EXPIRE_SECONDS,
			options: { concurrency },
		},
	});
	if (result.error) throw new Error(`the node failed: ${result.error.message}`);
	const items = result.items ?? [];
	// Every item must carry its own ticket, in item order: a fast wrong answer is not a result.
	return items.filter((item, i) => typeof item.json.ticket === 'string' && item.json.scene === sceneOf(i)).length;
}

async function getJson(url: string, init?: RequestInit): Promise<Record<string, unknown>> {
	const response = await fetch(url, init);
	return (await response.json()) as Record<string, unknown>;
}

async function classicToken(sim: SimulatorProcess): Promise<string> {
	const query = new URLSearchParams({ grant_type: 'client_credential', appid: sim.appId, secret: sim.appSecret });
	const answer = await getJson(`${sim.apiBaseUrl}/cgi-bin/token?${query}`);
	if (typeof answer.access_token !== 'string') throw new Error(`token request failed: ${JSON.stringify(answer)}`);
	return answer.access_token;
}

async function createTicket(sim: SimulatorProcess, token: string, i: number): Promise<boolean> {
	const answer = await getJson(`${sim.apiBaseUrl}/cgi-bin/qrcode/create?access_token=${encodeURIComponent(token)}`, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ expire_seconds: EXPIRE_SECONDS, action_name: 'QR_STR_SCENE', action_info: { scene: { scene_str: sceneOf(i) } } }),
	});
	return typeof answer.ticket === 'string';
}

/**
 * (b') n8n's own HTTP client (what `helpers.httpRequest` calls) with the same bounded pool, nothing else: no
 * workflow, no expression, no credential. Any node that sends through n8n's helper pays at least this.
 */
async function n8nHttpClientPool(sim: SimulatorProcess, n: number, concurrency: number): Promise<number> {
	const client = n8nHttpClient();
	const token = await classicToken(sim);
	let next = 0;
	let ok = 0;
	const worker = async (): Promise<void> => {
		while (next < n) {
			const i = next++;
			const answer = (await client.request({
				method: 'POST',
				url: `${sim.apiBaseUrl}/cgi-bin/qrcode/create`,
				qs: { access_token: token },
				body: { expire_seconds: EXPIRE_SECONDS, action_name: 'QR_STR_SCENE', action_info: { scene: { scene_str: sceneOf(i) } } },
				json: true,
				// The request options the node's transport sends.
				timeout: retryTiming.requestTimeoutMs,
				disableFollowRedirect: true,
			})) as { ticket?: unknown };
			if (typeof answer.ticket === 'string') ok++;
		}
	};
	await Promise.all(Array.from({ length: concurrency }, worker));
	return ok;
}

/** (a) What peer packages do: one token, then one await per item (fetch keeps the connection alive). */
async function sequentialLoop(sim: SimulatorProcess, n: number): Promise<number> {
	const token = await classicToken(sim);
	let ok = 0;
	for (let i = 0; i < n; i++) if (await createTicket(sim, token, i)) ok++;
	return ok;
}

/** (a') The variant that asks the classic cgi-bin/token for a fresh token before every call. */
async function freshTokenLoop(sim: SimulatorProcess, n: number): Promise<number> {
	let ok = 0;
	for (let i = 0; i < n; i++) if (await createTicket(sim, await classicToken(sim), i)) ok++;
	return ok;
}

export async function benchBulkCreate(options: BulkCreateOptions): Promise<BenchmarkResult> {
	const { n, latencyMs, concurrency } = options;
	const freshTokenN = Math.min(options.freshTokenN, n);
	// Warm-up outside the measurements (module loading, JIT, the first connections), against a WeChat of its
	// own: the node shares a token fetched in the last minute, and the measured batch must fetch its own.
	const warmUpItems = Math.min(WARM_UP_ITEMS, n);
	const warmUp = await startSimulatorProcess({ latencyMs });
	try {
		await runNodeBatch(warmUp, warmUpItems, concurrency);
		await n8nHttpClientPool(warmUp, warmUpItems, concurrency);
		await sequentialLoop(warmUp, WARM_UP_LOOP_ITEMS);
	} finally {
		await warmUp.close();
	}
	// Each round on a WeChat of its own: the node reuses a token its process fetched in the last minute, and
	// every measured batch must fetch its own.
	const pooled = [
		{ name: `node, concurrency ${concurrency}`, rounds: [] as Measured[], run: (sim: SimulatorProcess) => runNodeBatch(sim, n, concurrency) },
		{ name: `(b') n8n's HTTP client alone, concurrency ${concurrency}`, rounds: [] as Measured[], run: (sim: SimulatorProcess) => n8nHttpClientPool(sim, n, concurrency) },
	];
	for (let r = 0; r < ROUNDS; r++) {
		for (const contender of r % 2 === 0 ? pooled : [...pooled].reverse()) {
			contender.rounds.push(await measureOnOwnSimulator(latencyMs, `${contender.name}, round ${r + 1} of ${ROUNDS}`, n, contender.run));
		}
	}
	const [nodeRounds, clientRounds] = pooled.map((contender) => contender.rounds);
	const [node, client] = pooled.map((contender) => medianRound(contender.rounds, `${contender.name} (median of ${ROUNDS} rounds)`));

	const sim = await startSimulatorProcess({ latencyMs });
	let loop: Measured;
	let fresh: Measured;
	let node1: Measured;
	try {
		loop = await measure(sim, '(a) sequential loop, one token', n, () => sequentialLoop(sim, n));
		fresh = await measure(sim, "(a') sequential loop, fresh token per call", freshTokenN, () => freshTokenLoop(sim, freshTokenN));
		node1 = await measure(sim, 'node, concurrency 1', n, () => runNodeBatch(sim, n, 1));
	} finally {
		await sim.close();
	}
	const runs = [node, node1, client, loop, fresh];

	const idealMs = (n * latencyMs) / concurrency;
	const rate = (m: Measured) => (m.n * 1000) / m.wallMs;
	const speedupOverLoop = rate(node) / rate(loop);
	const speedupOverFresh = rate(node) / rate(fresh);
	const failures = [...nodeRounds, ...clientRounds, node1, loop, fresh].filter((m) => m.ok !== m.n);
	// Every node batch, not only the median one, must have fetched exactly one token.
	const oddTokenRound = nodeRounds.find((m) => m.tokenFetches !== 1);

	/** `serialCalls`: calls one after the other if nothing else cost time (its own ideal). */
	const row = (m: Measured, serialCalls: number, note: string) => [
		m.label,
		m.n,
		round(m.wallMs / 1000, 2),
		round(rate(m), 1),
		round(m.cpuMs / m.n, 2),
		m.tokenFetches,
		m.createCalls,
		round(m.wallMs / (serialCalls * latencyMs), 2),
		round(rate(node) / rate(m), 2),
		note,
	];
	const notes = [
		`Simulator latency ${latencyMs} ms on every API call (token calls included); "ideal" = N × latency / concurrency = ${round(idealMs / 1000, 2)} s for N = ${n}, concurrency ${concurrency}. The simulator runs in its own process, like WeChat on another machine.`,
		`Before the measurements, against a simulator of its own, the node and (b') each ran ${warmUpItems.toLocaleString('en-US')} items (the loops ${WARM_UP_LOOP_ITEMS}), so every contender is measured with its code optimised, as in a long-running n8n.`,
		`The node and (b') ran ${ROUNDS} rounds each, alternating and each on a simulator of its own (the order swapped every round); their rows give the round with the median wall time, which the targets use, and the rounds table gives every round. The loops and the node at concurrency 1 ran once.`,
		'Speed-ups compare throughput (items/s) measured in this run; nothing is extrapolated.',
		`CPU ms/item is this process's CPU time (user + system) per item; the simulator runs in another process. At concurrency ${concurrency} the ideal needs ${round((n * 1000) / idealMs, 0)} items/s, so a contender needing c ms of CPU per item needs c × ${round((n * 1000) / idealMs / 1000, 2)} of a core to keep up.`,
		`(b') sends the same calls through n8n's own HTTP client (OutboundHttp, behind \`helpers.httpRequest\`), which builds a new agent and opens a new connection for every request, with the same pool and nothing else. The node at concurrency ${concurrency} took ${round(node.wallMs / client.wallMs, 2)} × its wall time: the rest is n8n's execution engine, the \`sceneStr\` expression, the credential's authentication per call and the node's own code.`,
		"(a) and (a') are plain `fetch` loops with a kept-alive connection, the classic `GET /cgi-bin/token` and `POST /cgi-bin/qrcode/create`; the node goes through n8n-core's WorkflowExecute, expression resolution (`sceneStr` = `{{ $json.channel }}`), the credential's preAuthentication and n8n's HTTP helper.",
	];
	if (freshTokenN < n) {
		notes.push(`(a') was measured on N = ${freshTokenN}, not on the full N = ${n} (it needs about 2 × N × latency); its speed-up is a ratio of measured throughputs.`);
	}
	for (const m of failures) notes.push(`${m.label}: only ${m.ok} of ${m.n} items came back with their ticket.`);

	return {
		id: 1,
		title: `Bulk create: ${n.toLocaleString('en-US')} temporary tickets, ${latencyMs} ms latency`,
		tables: [
			{
				title: 'Results',
				columns: ['Contender', 'N', 'Wall (s)', 'Items/s', 'CPU ms/item', 'Token fetches', 'create calls', 'Wall / own ideal', `Node c=${concurrency} is … × faster`, 'Note'],
				rows: [
					row(node, n / concurrency, `own ideal N × latency / ${concurrency}`),
					row(node1, n, 'reference; own ideal N × latency'),
					row(client, n / concurrency, `floor of any node using n8n's HTTP helper; own ideal N × latency / ${concurrency}`),
					row(loop, n, 'peer pattern; own ideal N × latency'),
					row(fresh, 2 * fresh.n, `peer pattern; own ideal 2 × N × latency${freshTokenN < n ? `; measured on N = ${freshTokenN}` : ''}`),
					[`ideal N × latency / ${concurrency}`, n, round(idealMs / 1000, 2), round((n * 1000) / idealMs, 1), null, null, null, 1, round(rate(node) / ((n * 1000) / idealMs), 2), 'lower bound at this concurrency'],
				],
			},
			{
				title: `Rounds at concurrency ${concurrency} (the order alternated: the node ran first in the odd rounds)`,
				columns: ['Contender', 'Round', 'Wall (s)', 'Wall / ideal', 'CPU ms/item', 'Token fetches', 'create calls'],
				rows: pooled.flatMap(({ name, rounds }) =>
					rounds.map((m, i) => [name, i + 1, round(m.wallMs / 1000, 2), round(m.wallMs / idealMs, 3), round(m.cpuMs / m.n, 2), m.tokenFetches, m.createCalls]),
				),
			},
		],
		targets: [
			atMost(`node wall time within 1.25 × ideal (${round(idealMs / 1000, 1)} s)`, node.wallMs / idealMs, 1.25, ' ×'),
			atLeast('node ≥ 8 × faster than the one-at-a-time loop (a)', speedupOverLoop, 8, ' ×'),
			exactly(`token fetches for the whole node batch, in each of the ${ROUNDS} rounds`, oddTokenRound?.tokenFetches ?? 1, 1),
		],
		notes,
		data: {
			n,
			freshTokenN,
			latencyMs,
			concurrency,
			idealMs,
			runs: runs.map((m) => ({ ...m, itemsPerSecond: rate(m) })),
			rounds: { node: nodeRounds.map((m) => ({ ...m, itemsPerSecond: rate(m) })), n8nHttpClient: clientRounds.map((m) => ({ ...m, itemsPerSecond: rate(m) })) },
			speedupOverLoop,
			speedupOverFreshTokenLoop: speedupOverFresh,
			nodeWallOverN8nHttpClientWall: node.wallMs / client.wallMs,
		},
	};
}
