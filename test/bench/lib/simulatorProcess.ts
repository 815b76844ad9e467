/**
 * The WeChat simulator in its own process, as WeChat is another machine: its request handling, JSON and
 * JPEG rendering then take no CPU time from the code under test (on a 2-core machine they took about a
 * sixth of it in process). Run as a script it is the child; `startSimulatorProcess` is the parent's handle,
 * asking the child's counters over IPC.
 */
import { fork } from 'node:child_process';

import { startSimulator } from '../../simulator';
import type { SimulatorOptions, WeChatSimulator } from '../../simulator';

type Request = { op: 'tokenFetches' } | { op: 'requestCount'; path: string } | { op: 'reset' } | { op: 'close' };
type Query = Request & { id: number };
type Answer = { id: number; value: number | null };

export interface SimulatorProcess {
	apiBaseUrl: string;
	mpBaseUrl: string;
	appId: string;
	appSecret: string;
	/** Successful token answers (stable_token + token) since the start or the last reset. */
	tokenFetches(): Promise<number>;
	/** Requests the simulator received on this path since the start or the last reset. */
	requestCount(path: string): Promise<number>;
	reset(): Promise<void>;
	close(): Promise<void>;
}

export async function startSimulatorProcess(options: SimulatorOptions): Promise<SimulatorProcess> {
	// Same Node flags as this process (tsx's loader). A separate process is the point. (The rule is for node code.)
	// eslint-disable-next-line @n8n/community-nodes/no-dangerous-functions
	const child = fork(__filename, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
	const pending = new Map<number, (value: number | null) => void>();
	let nextId = 0;
	const ready = new Promise<Pick<WeChatSimulator, 'apiBaseUrl' | 'mpBaseUrl' | 'appId' | 'appSecret'>>((resolve, reject) => {
		child.once('message', resolve);
		child.once('exit', (code) => reject(new Error(`the simulator process exited with ${code}`)));
	});
	const info = await ready;
	child.on('message', (answer: Answer) => {
		pending.get(answer.id)?.(answer.value);
		pending.delete(answer.id);
	});
	const ask = (request: Request): Promise<number | null> =>
		new Promise((resolve) => {
			const id = nextId++;
			pending.set(id, resolve);
			child.send({ ...request, id });
		});
	return {
		...info,
		tokenFetches: async () => Number(await ask({ op: 'tokenFetches' })),
		requestCount: async (requestPath) => Number(await ask({ op: 'requestCount', path: requestPath })),
		reset: async () => {
			await ask({ op: 'reset' });
		},
		close: async () => {
			const exited = new Promise((resolve) => child.once('exit', resolve));
			await ask({ op: 'close' });
			await exited;
		},
	};
}

async function serve(options: SimulatorOptions): Promise<void> {
	const sim = await startSimulator(options);
	process.send?.({ apiBaseUrl: sim.apiBaseUrl, mpBaseUrl: sim.mpBaseUrl, appId: sim.appId, appSecret: sim.appSecret });
	process.on('message', (query: Query) => {
		const answer = (value: number | null) => process.send?.({ id: query.id, value } satisfies Answer);
		switch (query.op) {
			case 'tokenFetches':
				answer(sim.tokenFetches());
				return;
			case 'requestCount':
				answer(sim.requestsTo(query.path).length);
				return;
			case 'reset':
				sim.reset();
				answer(null);
				return;
			case 'close':
				void sim.close().then(() => process.send?.({ id: query.id, value: null } satisfies Answer, () => process.exit(0)));
				return;
		}
	});
	// The parent went away without closing: do not linger.
	process.once('disconnect', () => process.exit(0));
}

if (require.main === module) void serve(JSON.parse(process.argv[2] ?? '{}') as SimulatorOptions);
