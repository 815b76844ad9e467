/**
 * `npm run bench` (`tsx --expose-gc test/bench/run.ts [--only 1,3] [--quick]`): the campaign-scale
 * benchmarks. Not a test: every result is a ratio measured side by side in this run, printed with PASS/MISS
 * per target, and written with the machine facts to test/bench/results/latest.json. See BENCHMARKS.md.
 */
// Must stay the first import: see the file.
import './lib/asShipped';

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { benchBulkCreate } from './bulkCreate';
import { benchBulkImage } from './bulkImage';
import { formatBenchmark, machineFacts, type BenchmarkResult } from './lib/report';
import { benchTriggerInProcess } from './triggerInProcess';
import { benchTriggerThroughN8n } from './triggerThroughN8n';

interface Flags {
	only: Set<number> | null;
	quick: boolean;
	/** Benchmark 4 records a CPU profile of n8n per window (see triggerThroughN8n.ts). */
	profile: boolean;
}

function parseFlags(argv: string[]): Flags {
	const flags: Flags = { only: null, quick: false, profile: false };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		if (arg === '--quick') flags.quick = true;
		else if (arg === '--profile') flags.profile = true;
		else if (arg === '--only' || arg.startsWith('--only=')) {
			const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
			const ids = (value ?? '').split(',').map((id) => Number(id.trim()));
			if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 1)) throw new Error(`--only needs benchmark numbers like 1,3 (got ${value})`);
			flags.only = new Set(ids);
		} else throw new Error(`unknown argument ${arg}; use --only 1,3, --quick and/or --profile`);
	}
	return flags;
}

type Benchmark = { id: number; run: (flags: Flags) => Promise<BenchmarkResult> };

const BENCHMARKS: Benchmark[] = [
	{
		id: 1,
		run: ({ quick }) => benchBulkCreate({ n: quick ? 200 : 2_000, freshTokenN: quick ? 100 : 2_000, latencyMs: 50, concurrency: 10 }),
	},
	{
		id: 2,
		run: ({ quick }) => benchBulkImage({ n: quick ? 100 : 500, latencyMs: 50, concurrency: 10 }),
	},
	{
		id: 3,
		run: ({ quick }) => benchTriggerInProcess({ seconds: quick ? 0.5 : 3, warmupSeconds: quick ? 0.3 : 1, rounds: quick ? 2 : 5 }),
	},
	{
		id: 4,
		run: ({ quick, profile }) =>
			benchTriggerThroughN8n({ seconds: quick ? 3 : 12, warmupSeconds: quick ? 2 : 15, rounds: quick ? 2 : 6, connections: 10, modes: ['safe', 'plaintext'], profile }),
	},
];

function print(text: string): void {
	process.stdout.write(`${text}\n`);
}

async function main(): Promise<void> {
	const flags = parseFlags(process.argv.slice(2));
	const machine = machineFacts();
	const selected = BENCHMARKS.filter((b) => flags.only === null || flags.only.has(b.id));
	for (const id of flags.only ?? []) {
		if (!BENCHMARKS.some((b) => b.id === id)) throw new Error(`there is no benchmark ${id} (available: ${BENCHMARKS.map((b) => b.id).join(', ')})`);
	}
	if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
		process.stderr.write('note: run with --expose-gc (npm run bench does) so memory baselines are taken after a GC\n');
	}

	const caveats = [flags.quick ? '--quick: smaller N, shorter windows' : '', flags.profile ? '--profile: n8n runs under a CPU profiler in benchmark 4' : ''].filter(Boolean);
	print(`# Benchmarks${caveats.length ? ` (${caveats.join('; ')}; not for the record)` : ''}\n`);
	print(
		`Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, Node ${machine.node}, ${machine.platform}/${machine.arch}, ${machine.date}, load average ${machine.loadAverage1m} at the start\n`,
	);

	const results: Array<BenchmarkResult & { loadAverage1m: { start: number; end: number } }> = [];
	const load = () => Math.round(os.loadavg()[0] * 100) / 100;
	for (const benchmark of selected) {
		const start = load();
		const result = await benchmark.run(flags);
		const end = load();
		results.push({ ...result, loadAverage1m: { start, end } });
		print(`${formatBenchmark(result)}\n\n(1-minute load average ${start} at the start of this benchmark, ${end} at its end, on ${machine.cores} cores)\n`);
	}

	const targets = results.flatMap((r) => r.targets.map((t) => ({ benchmark: r.id, ...t })));
	const missed = targets.filter((t) => !t.pass);
	print(`Targets: ${targets.length - missed.length} PASS, ${missed.length} MISS${missed.length ? ` (${missed.map((t) => `#${t.benchmark} ${t.target}`).join('; ')})` : ''}`);

	const outDir = path.join(__dirname, 'results');
	mkdirSync(outDir, { recursive: true });
	const outFile = path.join(outDir, 'latest.json');
	writeFileSync(outFile, `${JSON.stringify({ quick: flags.quick, profile: flags.profile, only: flags.only ? [...flags.only] : null, machine, results }, null, '\t')}\n`);
	print(`Report written to ${path.relative(process.cwd(), outFile)}`);
}

main().then(
	// Open handles of n8n-core (timers, agents) must not keep a finished benchmark alive.
	() => process.exit(0),
	(error: unknown) => {
		process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
		process.exit(1);
	},
);
