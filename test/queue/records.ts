/**
 * n8n's own records in PostgreSQL: execution_entity (status per execution) and execution_data (the run
 * data, stored in `flatted` format), plus Bull's job hashes in Redis.
 */
import type { FlattedModule, PgPool } from './pg';

export interface ExecutionRow {
	id: string;
	status: string;
	mode: string;
	finished: boolean;
	retryOf: string | null;
	startedAt: Date | null;
	stoppedAt: Date | null;
	createdAt: Date;
}

export const TERMINAL_STATUSES = ['success', 'error', 'crashed', 'canceled'];

export async function executionsOf(pool: PgPool, workflowId: string, { sinceId = 0 }: { sinceId?: number } = {}): Promise<ExecutionRow[]> {
	const result = await pool.query<ExecutionRow & { id: number | string }>(
		`SELECT id, status, mode, finished, "retryOf", "startedAt", "stoppedAt", "createdAt"
		   FROM execution_entity WHERE "workflowId" = $1 AND id > $2 AND "deletedAt" IS NULL ORDER BY id`,
		[workflowId, sinceId],
	);
	return result.rows.map((row) => ({ ...row, id: String(row.id), retryOf: row.retryOf === null ? null : String(row.retryOf) }));
}

export async function maxExecutionId(pool: PgPool): Promise<number> {
	const result = await pool.query<{ max: number | null }>('SELECT MAX(id) AS max FROM execution_entity');
	return Number(result.rows[0]?.max ?? 0);
}

export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
	return counts;
}

/**
 * Polls until `expected` executions of the workflow exist and all are in a terminal state (or until the
 * deadline). Returns the rows at the end and how long it took.
 */
export async function waitForExecutions(
	pool: PgPool,
	workflowId: string,
	{ expected, sinceId = 0, timeoutMs, pollMs = 1_000, onPoll }: { expected: number; sinceId?: number; timeoutMs: number; pollMs?: number; onPoll?: (rows: ExecutionRow[]) => void },
): Promise<{ rows: ExecutionRow[]; waitedMs: number; timedOut: boolean }> {
	const started = Date.now();
	for (let poll = 0; ; poll++) {
		const rows = await executionsOf(pool, workflowId, { sinceId });
		onPoll?.(rows);
		const done = rows.length >= expected && rows.every((row) => TERMINAL_STATUSES.includes(row.status));
		if (done) return { rows, waitedMs: Date.now() - started, timedOut: false };
		if (Date.now() - started > timeoutMs || poll > timeoutMs / pollMs + 5) return { rows, waitedMs: Date.now() - started, timedOut: true };
		await new Promise((resolve) => setTimeout(resolve, pollMs));
	}
}

interface NodeRun {
	startTime?: number;
	executionTime?: number;
	error?: unknown;
	data?: { main?: Array<Array<{ json: Record<string, unknown> }> | null> };
}

export interface RunData {
	resultData?: { runData?: Record<string, NodeRun[]>; error?: unknown; lastNodeExecuted?: string };
	executionData?: { nodeExecutionStack?: Array<{ node?: { name?: string }; data?: { main?: Array<Array<{ json: Record<string, unknown> }> | null> } }> };
}

/** Decoded execution_data.data per execution id (in batches, so 2,000 rows never sit in one result set). */
export async function executionData(pool: PgPool, flatted: FlattedModule, ids: string[], batchSize = 200): Promise<Map<string, RunData>> {
	const out = new Map<string, RunData>();
	for (let i = 0; i < ids.length; i += batchSize) {
		const batch = ids.slice(i, i + batchSize).map(Number);
		const result = await pool.query<{ executionId: number | string; data: string }>(
			'SELECT "executionId", data FROM execution_data WHERE "executionId" = ANY($1::int[])',
			[batch],
		);
		for (const row of result.rows) out.set(String(row.executionId), flatted.parse(row.data) as RunData);
	}
	return out;
}

/**
 * The event a trigger handed to an execution: from the trigger's run output once the execution ran, or from
 * the execution stack n8n stored when it enqueued the execution (still there when a worker died mid-run).
 */
export function triggerEvent(data: RunData | undefined, triggerName: string): Record<string, unknown> | undefined {
	const fromRun = data?.resultData?.runData?.[triggerName]?.[0]?.data?.main?.[0]?.[0]?.json;
	if (fromRun) return fromRun;
	const stack = data?.executionData?.nodeExecutionStack ?? [];
	for (const entry of stack) {
		const json = entry.data?.main?.[0]?.[0]?.json;
		if (json && 'scene' in json) return json;
	}
	return undefined;
}

export function nodeOutput(data: RunData | undefined, nodeName: string): Array<{ json: Record<string, unknown> }> {
	return data?.resultData?.runData?.[nodeName]?.[0]?.data?.main?.[0] ?? [];
}

export function nodeStartTime(data: RunData | undefined, nodeName: string): number | undefined {
	return data?.resultData?.runData?.[nodeName]?.[0]?.startTime;
}

export async function credentialUpdatedAt(pool: PgPool, id: string): Promise<Date | null> {
	const result = await pool.query<{ updatedAt: Date }>('SELECT "updatedAt" FROM credentials_entity WHERE id = $1', [id]);
	return result.rows[0]?.updatedAt ?? null;
}

export async function registeredWebhooks(pool: PgPool): Promise<Array<{ workflowId: string; webhookPath: string; method: string }>> {
	const result = await pool.query<{ workflowId: string; webhookPath: string; method: string }>('SELECT "workflowId", "webhookPath", method FROM webhook_entity');
	return result.rows;
}

export function percentile(values: number[], p: number): number {
	if (values.length === 0) return NaN;
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
