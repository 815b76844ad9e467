/**
 * What every benchmark hands back (rows for a table, targets with PASS/MISS), the machine facts, and the
 * text table printer. A benchmark never decides how its numbers look: it reports what it measured, and
 * a missed target says by how much.
 */
import os from 'node:os';

export type Cell = string | number | null;

export interface Table {
	title: string;
	columns: string[];
	rows: Cell[][];
}

export interface TargetResult {
	/** What the target says, e.g. "wall time ≤ 1.25 × ideal". */
	target: string;
	/** The measured value the target is judged on, e.g. "1.07 ×". */
	measured: string;
	pass: boolean;
	/** How far from the limit, in words: the headroom for a PASS, the shortfall for a MISS. */
	margin: string;
}

export interface BenchmarkResult {
	id: number;
	title: string;
	tables: Table[];
	targets: TargetResult[];
	/** Anything a reader needs to interpret the numbers (smaller N, skipped parts, caveats). */
	notes: string[];
	/** Raw numbers for the JSON report. */
	data: Record<string, unknown>;
}

export interface MachineFacts {
	cpuModel: string;
	cores: number;
	ramGiB: number;
	node: string;
	v8: string;
	platform: string;
	arch: string;
	osRelease: string;
	date: string;
	/** 1-minute load average when the run started: other processes on the machine skew every number. */
	loadAverage1m: number;
}

export function machineFacts(): MachineFacts {
	const cpus = os.cpus();
	return {
		cpuModel: cpus[0]?.model.trim() ?? 'unknown',
		cores: cpus.length,
		ramGiB: round(os.totalmem() / 1024 ** 3, 1),
		node: process.version,
		v8: process.versions.v8,
		platform: process.platform,
		arch: process.arch,
		osRelease: os.release(),
		date: new Date().toISOString(),
		loadAverage1m: round(os.loadavg()[0], 2),
	};
}

export function round(value: number, digits = 2): number {
	const factor = 10 ** digits;
	return Math.round(value * factor) / factor;
}

export function median(values: number[]): number {
	if (values.length === 0) return NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const middle = sorted.length >> 1;
	return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const percent = (fraction: number): string => `${round(Math.abs(fraction) * 100, 1)} %`;

/** measured ≤ limit (e.g. a time ratio or a memory growth); the margin is relative to the limit. */
export function atMost(target: string, measured: number, limit: number, unit: string): TargetResult {
	const pass = measured <= limit;
	const gap = (limit - measured) / limit;
	return {
		target,
		measured: `${round(measured, 2)}${unit}`,
		pass,
		margin: pass ? `${percent(gap)} under the limit (${round(limit, 2)}${unit})` : `${percent(gap)} over the limit (${round(limit, 2)}${unit})`,
	};
}

/** measured ≥ limit (e.g. a speed-up or a throughput share); the margin is relative to the limit. */
export function atLeast(target: string, measured: number, limit: number, unit: string): TargetResult {
	const pass = measured >= limit;
	const gap = (measured - limit) / limit;
	return {
		target,
		measured: `${round(measured, 2)}${unit}`,
		pass,
		margin: pass ? `${percent(gap)} above the limit (${round(limit, 2)}${unit})` : `${percent(gap)} short of the limit (${round(limit, 2)}${unit})`,
	};
}

export function exactly(target: string, measured: number, expected: number): TargetResult {
	const pass = measured === expected;
	return {
		target,
		measured: String(measured),
		pass,
		margin: pass ? 'exact' : `${measured - expected > 0 ? '+' : ''}${measured - expected} against ${expected}`,
	};
}

function cellText(cell: Cell): string {
	if (cell === null) return '–';
	if (typeof cell === 'number') return Number.isInteger(cell) ? cell.toLocaleString('en-US') : String(cell);
	return cell;
}

function formatRows(columns: string[], rows: Cell[][]): string {
	const text = [columns, ...rows.map((row) => row.map(cellText))];
	const widths = columns.map((_, i) => Math.max(...text.map((row) => (row[i] ?? '').length)));
	const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
	return [line(text[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...text.slice(1).map(line)].join('\n');
}

/** A benchmark as Markdown-compatible text: its tables, its targets and its notes. */
export function formatBenchmark(result: BenchmarkResult): string {
	const parts = [`## ${result.id}. ${result.title}`];
	for (const table of result.tables) parts.push(`${table.title}\n\n${formatRows(table.columns, table.rows)}`);
	if (result.targets.length > 0) {
		parts.push(
			`Targets\n\n${formatRows(
				['Target', 'Measured', 'Result', 'Margin'],
				result.targets.map((t) => [t.target, t.measured, t.pass ? 'PASS' : 'MISS', t.margin]),
			)}`,
		);
	}
	if (result.notes.length > 0) parts.push(result.notes.map((note) => `- ${note}`).join('\n'));
	return parts.join('\n\n');
}

/** One line per sub-step, so a long run shows it is alive. */
export function progress(message: string): void {
	process.stderr.write(`  [bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
