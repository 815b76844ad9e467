/**
 * Which n8n process made a call to the WeChat simulator: a pass-through HTTP proxy in front of the simulator
 * (the credential's API base URL points at it) that, for the paths asked for, looks up the caller's socket in
 * /proc/net/tcp and the process holding it in /proc/<pid>/fd (Linux only; n8n runs as the same user here).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

export interface AttributedCall {
	path: string;
	at: number;
	/** PID holding the client socket, when found. */
	pid?: number;
	/** Process group of that PID (the tracked n8n process it belongs to). */
	pgid?: number;
}

export interface AttributingProxy {
	url: string;
	calls: AttributedCall[];
	/** Resolves when every started lookup finished. */
	settled(): Promise<void>;
	close(): Promise<void>;
}

/** Inode of the client-side socket 127.0.0.1:<clientPort> -> 127.0.0.1:<serverPort>. */
function socketInode(clientPort: number, serverPort: number): string | undefined {
	const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
	for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
		let text = '';
		try {
			text = fs.readFileSync(table, 'utf8');
		} catch {
			continue;
		}
		for (const line of text.split('\n').slice(1)) {
			const cols = line.trim().split(/\s+/);
			if (cols.length < 10) continue;
			const local = cols[1].split(':')[1];
			const remote = cols[2].split(':')[1];
			if (local === hex(clientPort) && remote === hex(serverPort)) return cols[9];
		}
	}
	return undefined;
}

function processGroupOf(pid: number): number | undefined {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
	} catch {
		return undefined;
	}
}

async function holds(pid: number, target: string): Promise<boolean> {
	let fds: string[] = [];
	try {
		fds = await fs.promises.readdir(`/proc/${pid}/fd`);
	} catch {
		return false;
	}
	const links = await Promise.all(fds.slice(0, 5_000).map((fd) => fs.promises.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
	return links.includes(target);
}

/**
 * The PID (among the processes of `groups`) with an open fd on socket:[inode]. Asynchronous and parallel, so
 * that the lookup never holds back the proxied call (a slower token answer would widen the very race being
 * measured) and still finishes while the caller's connection is open. Group leaders (the n8n processes
 * themselves, which make the WeChat calls) are searched first, then their children.
 */
async function ownerOf(inode: string, groups: Set<number>): Promise<number | undefined> {
	const target = `socket:[${inode}]`;
	const leaders = [...groups];
	const found = await Promise.all(leaders.map((pid) => holds(pid, target)));
	const leader = leaders.find((_, i) => found[i]);
	if (leader !== undefined) return leader;
	let pids: number[] = [];
	try {
		pids = (await fs.promises.readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
	} catch {
		return undefined;
	}
	const members = pids.filter((pid) => !groups.has(pid) && groups.has(processGroupOf(pid) ?? -1));
	const memberFound = await Promise.all(members.map((pid) => holds(pid, target)));
	return members.find((_, i) => memberFound[i]);
}

export async function startAttributingProxy(
	targetUrl: string,
	{ attributePaths, groups }: { attributePaths: string[]; groups: () => number[] },
): Promise<AttributingProxy> {
	const target = new URL(targetUrl);
	const calls: AttributedCall[] = [];
	const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
	let serverPort = 0;
	const pending: Array<Promise<void>> = [];
	const server = http.createServer((req, res) => {
		const pathOnly = (req.url ?? '/').split('?')[0];
		const clientPort = req.socket.remotePort;
		if (attributePaths.includes(pathOnly)) {
			const call: AttributedCall = { path: pathOnly, at: Date.now() };
			calls.push(call);
			// Looked up alongside the proxied call, never before it: the connection stays open at least until
			// the answer (the simulator's latency), and n8n keeps it alive afterwards.
			if (clientPort !== undefined && process.platform === 'linux') {
				const inode = socketInode(clientPort, serverPort);
				if (inode) {
					pending.push(
						ownerOf(inode, new Set(groups())).then((pid) => {
							call.pid = pid;
							call.pgid = pid === undefined ? undefined : processGroupOf(pid);
						}),
					);
				}
			}
		}
		const upstream = http.request(
			{ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
			(answer) => {
				res.writeHead(answer.statusCode ?? 502, answer.headers);
				// pipeline, not pipe: a side that breaks (an n8n process killed mid-call, a socket closed at
				// teardown) destroys the other instead of raising an error nobody listens to.
				pipeline(answer, res, () => undefined);
			},
		);
		upstream.on('error', () => {
			if (res.headersSent) res.destroy();
			else res.writeHead(502).end();
		});
		pipeline(req, upstream, () => undefined);
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	serverPort = (server.address() as AddressInfo).port;
	return {
		url: `http://127.0.0.1:${serverPort}`,
		calls,
		settled: async () => {
			await Promise.all(pending);
		},
		close: () =>
			new Promise<void>((resolve) => {
				agent.destroy();
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
