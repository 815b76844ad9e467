/**
 * The two servers n8n's queue mode needs, started for one test run and thrown away afterwards:
 * Redis (no persistence) and a PostgreSQL cluster initialised in a temp dir (run as the `postgres` system
 * user: postgres refuses to run as root). Both listen on 127.0.0.1 only, on free ports, and are tracked by
 * PID (process group) through the runtime module, so they are stopped also when a test fails.
 *
 * Prerequisites (Debian packages redis-server and postgresql) are installed with apt-get when they are
 * missing and this runs as root; otherwise the caller gets a reason to SKIP.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { type PgModule } from './pg';
import { rt, type TrackedChild } from './runtime';

export const APT_PACKAGES = ['redis-server', 'postgresql'];

/** The first executable `command` on PATH (what `command -v` prints), without spawning a shell. */
function which(command: string): string | null {
	for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
		if (!dir) continue;
		const candidate = path.join(dir, command);
		try {
			fs.accessSync(candidate, fs.constants.X_OK);
			if (fs.statSync(candidate).isFile()) return candidate;
		} catch {
			/* not here */
		}
	}
	return null;
}

/** The newest /usr/lib/postgresql/<major>/bin that holds initdb and postgres (Debian's layout). */
function postgresBinDir(): string | null {
	const base = '/usr/lib/postgresql';
	let majors: string[] = [];
	try {
		majors = fs.readdirSync(base).filter((name) => /^\d+$/.test(name));
	} catch {
		/* not installed */
	}
	majors.sort((a, b) => Number(b) - Number(a));
	for (const major of majors) {
		const bin = path.join(base, major, 'bin');
		if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'postgres'))) return bin;
	}
	const initdb = which('initdb');
	return initdb && which('postgres') ? path.dirname(initdb) : null;
}

/** The `postgres` system user from /etc/passwd (Debian's postgresql package creates it there). */
function postgresUser(): { uid: number; gid: number } | null {
	let passwd = '';
	try {
		passwd = fs.readFileSync('/etc/passwd', 'utf8');
	} catch {
		return null;
	}
	const fields = passwd.split('\n').find((line) => line.startsWith('postgres:'))?.split(':');
	if (!fields || fields.length < 4) return null;
	return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

export interface Prerequisites {
	redisServer: string | null;
	postgresBin: string | null;
	postgresUser: { uid: number; gid: number } | null;
	/** runuser (util-linux) or su, to run postgres as its system user. */
	switchUser: 'runuser' | 'su' | null;
	missing: string[];
}

export function checkPrerequisites(): Prerequisites {
	const redisServer = which('redis-server');
	const postgresBin = postgresBinDir();
	const user = postgresUser();
	const switchUser = which('runuser') ? 'runuser' : which('su') ? 'su' : null;
	const missing: string[] = [];
	if (!redisServer) missing.push('redis-server (Debian package redis-server)');
	if (!postgresBin) missing.push('initdb/postgres (Debian package postgresql)');
	if (!user) missing.push("the 'postgres' system user (created by the Debian package postgresql)");
	if (!switchUser) missing.push('runuser or su (util-linux), to run postgres as its system user');
	if (process.platform !== 'linux') missing.push(`Linux (this is ${process.platform})`);
	else if (typeof process.getuid === 'function' && process.getuid() !== 0) {
		// initdb as the postgres user, and chown of the temp dir, need root.
		missing.push('root (to run PostgreSQL as the postgres system user in a throwaway cluster)');
	}
	return { redisServer, postgresBin, postgresUser: user, switchUser, missing };
}

/**
 * Installs redis-server and postgresql with apt-get when something is missing and this runs as root.
 * Returns the prerequisites afterwards; `missing` empty means ready.
 */
export async function ensurePrerequisites(): Promise<Prerequisites> {
	let found = checkPrerequisites();
	if (found.missing.length === 0) return found;
	const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
	if (!isRoot || !which('apt-get')) return found;
	rt.log(`queue mode needs ${found.missing.join(', ')}: apt-get install -y ${APT_PACKAGES.join(' ')}`);
	const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
	const update = await rt.run('apt-get', ['update'], { env, heartbeat: 'apt-get update', timeoutMs: 10 * 60_000, label: 'apt-get update' });
	if (update.code !== 0) rt.log(`apt-get update failed (exit ${update.code ?? update.signal}):\n${update.stderr.slice(-2000)}`);
	const install = await rt.run('apt-get', ['install', '-y', '--no-install-recommends', ...APT_PACKAGES], {
		env,
		heartbeat: `apt-get install ${APT_PACKAGES.join(' ')}`,
		timeoutMs: 15 * 60_000,
		label: 'apt-get install',
	});
	if (install.code !== 0) rt.log(`apt-get install failed (exit ${install.code ?? install.signal}):\n${install.stderr.slice(-2000)}`);
	found = checkPrerequisites();
	return found;
}

// ---------------------------------------------------------------------------------------------------------

function waitForTcp(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = net.connect({ host: '127.0.0.1', port });
		socket.setTimeout(2_000);
		socket.once('connect', () => {
			socket.destroy();
			resolve(true);
		});
		socket.once('timeout', () => {
			socket.destroy();
			resolve(false);
		});
		socket.once('error', () => resolve(false));
	});
}

/** Sends one inline command to Redis and returns the first reply line. */
export function redisCommand(port: number, command: string, timeoutMs = 5_000): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = net.connect({ host: '127.0.0.1', port });
		let data = '';
		const timer = setTimeout(() => {
			socket.destroy();
			reject(new Error(`redis ${command}: no answer within ${timeoutMs} ms`));
		}, timeoutMs);
		socket.once('connect', () => socket.write(`${command}\r\n`));
		socket.on('data', (chunk) => {
			data += chunk.toString();
			if (data.includes('\r\n')) {
				clearTimeout(timer);
				socket.destroy();
				resolve(data.split('\r\n')[0]);
			}
		});
		socket.once('error', (error) => {
			clearTimeout(timer);
			reject(error);
		});
	});
}

export interface RedisServer {
	port: number;
	child: TrackedChild;
	stop(): Promise<void>;
}

export async function startRedis(redisServer: string, dir: string): Promise<RedisServer> {
	const port = await rt.getFreePort();
	const logFile = path.join(dir, 'redis.log');
	const out = fs.openSync(logFile, 'a');
	const child = rt.spawnTracked(
		redisServer,
		['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'],
		{ cwd: dir, stdio: ['ignore', out, out] },
		'redis-server',
	);
	fs.closeSync(out);
	const started = Date.now();
	for (let attempt = 0; ; attempt++) {
		if (child.exitCode !== null || child.signalCode !== null) {
			throw new Error(`redis-server exited before it was ready:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
		}
		if (await waitForTcp(port)) {
			try {
				if ((await redisCommand(port, 'PING')) === '+PONG') break;
			} catch {
				/* not ready */
			}
		}
		if (Date.now() - started > 20_000 || attempt > 200) throw new Error(`redis-server on port ${port} not ready after 20 s`);
		await rt.sleep(100);
	}
	rt.log(`redis-server ready on 127.0.0.1:${port} (PID ${child.pid})`);
	return { port, child, stop: () => rt.stopProcess(child, { graceMs: 5_000 }) };
}

// ---------------------------------------------------------------------------------------------------------

export interface PostgresServer {
	port: number;
	dataDir: string;
	database: string;
	user: string;
	password: string;
	child: TrackedChild;
	stop(): Promise<void>;
}

function asPostgresUser(prereq: Prerequisites, command: string, args: string[]): { command: string; args: string[] } {
	if (prereq.switchUser === 'runuser') return { command: 'runuser', args: ['-u', 'postgres', '--', command, ...args] };
	const quoted = [command, ...args].map((part) => `'${part.replace(/'/g, "'\\''")}'`).join(' ');
	return { command: 'su', args: ['postgres', '-s', '/bin/sh', '-c', `exec ${quoted}`] };
}

/**
 * initdb in `<dir>/pg` (owned by the postgres system user), postgres on 127.0.0.1:<free port> with its socket
 * in that dir, durability off (a throwaway cluster), and a database + user for n8n.
 */
export async function startPostgres(prereq: Prerequisites, dir: string, pg: PgModule): Promise<PostgresServer> {
	if (!prereq.postgresBin || !prereq.postgresUser) throw new Error('postgres is not installed');
	const pgDir = path.join(dir, 'pg');
	const dataDir = path.join(pgDir, 'data');
	fs.mkdirSync(pgDir, { recursive: true });
	fs.chmodSync(dir, 0o755);
	fs.chownSync(pgDir, prereq.postgresUser.uid, prereq.postgresUser.gid);
	fs.chmodSync(pgDir, 0o700);

	const init = asPostgresUser(prereq, path.join(prereq.postgresBin, 'initdb'), [
		'-D',
		dataDir,
		'-U',
		'postgres',
		'--auth=trust',
		'--encoding=UTF8',
		'--no-locale',
		'--no-sync',
	]);
	const initResult = await rt.run(init.command, init.args, { cwd: pgDir, timeoutMs: 120_000, label: 'initdb' });
	if (initResult.code !== 0) {
		throw new Error(`initdb failed (exit ${initResult.code ?? initResult.signal}):\n${initResult.stdout.slice(-2000)}\n${initResult.stderr.slice(-2000)}`);
	}

	const port = await rt.getFreePort();
	const logFile = path.join(dir, 'postgres.log');
	const out = fs.openSync(logFile, 'a');
	const start = asPostgresUser(prereq, path.join(prereq.postgresBin, 'postgres'), [
		'-D',
		dataDir,
		'-p',
		String(port),
		'-c',
		'listen_addresses=127.0.0.1',
		'-c',
		`unix_socket_directories=${pgDir}`,
		'-c',
		'fsync=off',
		'-c',
		'synchronous_commit=off',
		'-c',
		'full_page_writes=off',
		'-c',
		'max_connections=200',
		'-c',
		'shared_buffers=128MB',
	]);
	const child = rt.spawnTracked(start.command, start.args, { cwd: pgDir, stdio: ['ignore', out, out] }, 'postgres');
	fs.closeSync(out);

	const started = Date.now();
	for (let attempt = 0; ; attempt++) {
		if (child.exitCode !== null || child.signalCode !== null) {
			throw new Error(`postgres exited before it was ready:\n${fs.readFileSync(logFile, 'utf8').slice(-3000)}`);
		}
		const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000 });
		try {
			await client.connect();
			await client.query('SELECT 1');
			await client.end();
			break;
		} catch {
			await client.end().catch(() => undefined);
		}
		if (Date.now() - started > 60_000 || attempt > 300) throw new Error(`postgres on port ${port} not ready after 60 s; see ${logFile}`);
		await rt.sleep(200);
	}

	const database = 'n8n';
	const user = 'n8n';
	const password = `qm${randomBytes(9).toString('hex')}`;
	const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
	await admin.connect();
	try {
		await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
		await admin.query(`CREATE DATABASE ${database} OWNER ${user}`);
	} finally {
		await admin.end();
	}
	rt.log(`postgres ready on 127.0.0.1:${port} (PID ${child.pid}, data ${dataDir})`);
	// SIGINT is PostgreSQL's "fast shutdown" (SIGTERM would wait for every client to disconnect).
	return { port, dataDir, database, user, password, child, stop: () => rt.stopProcess(child, { graceMs: 10_000, signal: 'SIGINT' }) };
}

// ---------------------------------------------------------------------------------------------------------
// A minimal RESP client: one command, one reply (enough to read Bull's job hashes).

export type RespValue = string | number | null | RespValue[];

function parseResp(buffer: Buffer, offset: number): { value: RespValue; next: number } | null {
	const lineEnd = buffer.indexOf('\r\n', offset);
	if (lineEnd === -1) return null;
	const type = String.fromCharCode(buffer[offset]);
	const line = buffer.toString('utf8', offset + 1, lineEnd);
	const after = lineEnd + 2;
	switch (type) {
		case '+':
			return { value: line, next: after };
		case '-':
			throw new Error(`redis: ${line}`);
		case ':':
			return { value: Number(line), next: after };
		case '$': {
			const length = Number(line);
			if (length < 0) return { value: null, next: after };
			if (buffer.length < after + length + 2) return null;
			return { value: buffer.toString('utf8', after, after + length), next: after + length + 2 };
		}
		case '*': {
			const count = Number(line);
			if (count < 0) return { value: null, next: after };
			const values: RespValue[] = [];
			let next = after;
			for (let i = 0; i < count; i++) {
				const item = parseResp(buffer, next);
				if (!item) return null;
				values.push(item.value);
				next = item.next;
			}
			return { value: values, next };
		}
		default:
			throw new Error(`redis: unexpected reply type ${type}`);
	}
}

export function redisQuery(port: number, args: string[], timeoutMs = 5_000): Promise<RespValue> {
	return new Promise((resolve, reject) => {
		const socket = net.connect({ host: '127.0.0.1', port });
		let data = Buffer.alloc(0);
		const timer = setTimeout(() => {
			socket.destroy();
			reject(new Error(`redis ${args[0]}: no answer within ${timeoutMs} ms`));
		}, timeoutMs);
		const done = (error: Error | null, value?: RespValue) => {
			clearTimeout(timer);
			socket.destroy();
			if (error) reject(error);
			else resolve(value as RespValue);
		};
		socket.once('connect', () => {
			socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
		});
		socket.on('data', (chunk: Buffer) => {
			data = Buffer.concat([data, chunk]);
			try {
				const parsed = parseResp(data, 0);
				if (parsed) done(null, parsed.value);
			} catch (error) {
				done(error as Error);
			}
		});
		socket.once('error', (error) => done(error));
	});
}
