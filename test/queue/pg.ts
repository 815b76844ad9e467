/**
 * PostgreSQL client and n8n's `flatted` decoder, loaded from the n8n installed in the cache (this package
 * has neither as a dependency), so the test reads n8n's own records exactly as n8n wrote them.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

export interface PgQueryResult<Row> {
	rows: Row[];
	rowCount: number | null;
}

export interface PgClient {
	connect(): Promise<void>;
	query<Row = Record<string, unknown>>(text: string, values?: unknown[]): Promise<PgQueryResult<Row>>;
	end(): Promise<void>;
}

export interface PgPool {
	query<Row = Record<string, unknown>>(text: string, values?: unknown[]): Promise<PgQueryResult<Row>>;
	end(): Promise<void>;
	/** An idle client's connection error is emitted here; without a listener it would end the test process. */
	on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface PgConnection {
	host: string;
	port: number;
	user: string;
	database: string;
	password?: string;
	connectionTimeoutMillis?: number;
	max?: number;
}

export interface PgModule {
	Client: new (config: PgConnection) => PgClient;
	Pool: new (config: PgConnection) => PgPool;
}

export interface FlattedModule {
	parse(text: string): unknown;
}

/** `runtime.n8nDir` is <cache>/n8n-<v>-node-v<v>/node_modules/n8n; its dependencies are hoisted next to it. */
export function loadFromN8n(n8nDir: string): { pg: PgModule; flatted: FlattedModule } {
	const require = createRequire(path.join(n8nDir, 'package.json'));
	return { pg: require('pg') as PgModule, flatted: require('flatted') as FlattedModule };
}
