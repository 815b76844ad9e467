import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { retryTiming } from '../nodes/shared/retryPolicy';
import { startSimulator, type WeChatSimulator } from './simulator';
import { CredentialStore, runNode } from './helpers/n8nHarness';

let sim: WeChatSimulator;
const defaults = { ...retryTiming };

beforeAll(async () => {
	sim = await startSimulator({ seed: 7 });
});

afterAll(async () => {
	await sim.close();
});

beforeEach(() => {
	sim.reset();
	// Real waits are a minute for the quota and ~0.4 s per backoff step; these tests keep the logic, not the waits.
	Object.assign(retryTiming, { backoffBaseMs: 5, minuteQuotaPauseMs: 200, requestTimeoutMs: 2_000 });
});

afterEach(() => {
	Object.assign(retryTiming, defaults);
});

function newCredential() {
	const store = new CredentialStore();
	const credential = store.add('wechat', 'weChatOfficialAccountApi', {
		appId: sim.appId,
		appSecret: sim.appSecret,
		apiBaseUrl: sim.apiBaseUrl,
		mpBaseUrl: sim.mpBaseUrl,
	});
	return { store, credential };
}

const items = (n: number) => Array.from({ length: n }, (_, i) => ({ json: { i } }));
const temporary = (extra: Record<string, unknown> = {}) => ({
	resource: 'qrCode',
	operation: 'createTicket',
	qrType: 'temporary',
	sceneType: 'string',
	sceneStr: '={{ "item_" + $json.i }}',
	expireSeconds: 600,
	...extra,
});

describe('bounded concurrency', () => {
	it('keeps item order and pairing with 20 items in flight, sharing one token', async () => {
		sim.setLatency(20);
		try {
			const { store, credential } = newCredential();
			const result = await runNode({ store, credential, items: items(200), parameters: temporary({ options: { concurrency: 20 } }) });
			expect(result.items?.map((item) => item.json.scene)).toEqual(items(200).map(({ json }) => `item_${json.i}`));
			expect(result.items?.map((item) => item.pairedItem)).toEqual(items(200).map(({ json }) => ({ item: json.i })));
			expect(sim.tokenFetches()).toBe(1);
		} finally {
			sim.setLatency(0);
		}
	});

	it('without Continue On Fail reports the first failing item and starts no new item after it', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({
			store,
			credential,
			items: items(50),
			parameters: temporary({ sceneStr: '={{ $json.i === 10 ? "" : "ok_" + $json.i }}', options: { concurrency: 4 } }),
		});
		expect(result.error?.message).toBe('sceneStr must be 1 to 64 characters long; got 0 characters');
		expect(sim.requestsTo('/cgi-bin/qrcode/create').length).toBeLessThan(20);
	});
});

describe('quotas', () => {
	it('pauses the whole batch on the per-minute quota (45011) and then completes every item', async () => {
		const { store, credential } = newCredential();
		sim.addFault({ path: '/cgi-bin/qrcode/create', errcode: 45011, times: 3 });
		const started = Date.now();
		const ticketsBefore = sim.tickets().length;
		const result = await runNode({ store, credential, items: items(12), parameters: temporary({ options: { concurrency: 3 } }) });
		expect(result.error).toBeUndefined();
		expect(result.items?.every((item) => typeof item.json.ticket === 'string')).toBe(true);
		expect(Date.now() - started).toBeGreaterThanOrEqual(retryTiming.minuteQuotaPauseMs);
		expect(sim.tickets().length - ticketsBefore).toBe(12);
	});

	it('gives up on the per-minute quota after a bounded number of pauses', async () => {
		const { store, credential } = newCredential();
		sim.addFault({ path: '/cgi-bin/qrcode/create', errcode: 45011 });
		const result = await runNode({ store, credential, items: items(1), parameters: temporary() });
		expect(result.error?.message).toBe('WeChat error 45011: Per-minute API quota reached');
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(1 + retryTiming.maxMinuteQuotaRetries);
	});

	it('fails the remaining items with a clear message once the daily quota (45009) is reached', async () => {
		const quota = await startSimulator({ dailyQuota: 5 });
		try {
			const store = new CredentialStore();
			const credential = store.add('wechat', 'weChatOfficialAccountApi', { appId: quota.appId, appSecret: quota.appSecret, apiBaseUrl: quota.apiBaseUrl, mpBaseUrl: quota.mpBaseUrl });
			const result = await runNode({ store, credential, continueOnFail: true, items: items(20), parameters: temporary({ options: { concurrency: 1 } }) });
			const outputs = result.items ?? [];
			expect(outputs).toHaveLength(20);
			expect(outputs.slice(0, 5).every((item) => typeof item.json.ticket === 'string')).toBe(true);
			for (const item of outputs.slice(5)) {
				expect(item.json.error).toBe('WeChat error 45009: Daily API quota reached');
				expect(String(item.json.description)).toContain('next day');
			}
			// One refused call tells the node; the other 14 items are not sent at all.
			expect(quota.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(6);
		} finally {
			await quota.close();
		}
	});
});

describe('transient faults', () => {
	it.each([
		['system busy (-1)', { errcode: -1 }],
		['HTTP 502', { httpStatus: 502 }],
		['a connection reset', { drop: true }],
	])('retries a temporary code after %s with backoff', async (_name, fault) => {
		const { store, credential } = newCredential();
		sim.addFault({ path: '/cgi-bin/qrcode/create', times: 2, ...fault });
		const ticketsBefore = sim.tickets().length;
		const result = await runNode({ store, credential, items: items(1), parameters: temporary() });
		expect(result.error).toBeUndefined();
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(3);
		expect(sim.tickets().length - ticketsBefore).toBe(1);
	});

	it('retries a timeout with backoff and stops after the bounded attempts', async () => {
		retryTiming.requestTimeoutMs = 300;
		const { store, credential } = newCredential();
		sim.addFault({ path: '/cgi-bin/qrcode/create', hang: true });
		const result = await runNode({ store, credential, items: items(1), parameters: temporary() });
		expect(result.error?.message).toBe('Could not reach WeChat (timed out)');
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(retryTiming.maxAttempts);
	});

	it('does not resend a permanent code after a reset (it may exist), but does after system busy', async () => {
		const { store, credential } = newCredential();
		const permanent = { qrType: 'permanent', sceneStr: '={{ "perm_" + $json.i }}' };
		sim.addFault({ path: '/cgi-bin/qrcode/create', drop: true, times: 1 });
		const reset = await runNode({ store, credential, continueOnFail: true, items: items(1), parameters: temporary(permanent) });
		expect(reset.items?.[0].json.error).toBe('Could not reach WeChat (connection reset)');
		expect(String(reset.items?.[0].json.description)).toContain('may or may not have created this permanent code');
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(1);

		sim.reset();
		sim.addFault({ path: '/cgi-bin/qrcode/create', errcode: -1, times: 1 });
		const busy = await runNode({ store, credential, items: items(1), parameters: temporary(permanent) });
		expect(busy.error).toBeUndefined();
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(2);
	});

	it('retries image downloads after a reset or a 503', async () => {
		const { store, credential } = newCredential();
		const created = await runNode({ store, credential, items: items(1), parameters: temporary() });
		sim.addFault({ path: '/cgi-bin/showqrcode', drop: true, times: 1 });
		sim.addFault({ path: '/cgi-bin/showqrcode', httpStatus: 503, times: 1 });
		const result = await runNode({ store, credential, items: [{ json: { ticket: created.items?.[0].json.ticket } }], parameters: { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'data' } });
		expect(result.error).toBeUndefined();
		expect(result.items?.[0].binary?.data.mimeType).toBe('image/jpeg');
	});

	it('reports an image server that keeps failing as a server fault, not as a bad ticket', async () => {
		const { store, credential } = newCredential();
		const created = await runNode({ store, credential, items: items(1), parameters: temporary() });
		sim.addFault({ path: '/cgi-bin/showqrcode', httpStatus: 502, times: retryTiming.maxAttempts });
		const getImage = { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'data' };
		const input = [{ json: { ticket: created.items?.[0].json.ticket } }];
		const failed = await runNode({ store, credential, continueOnFail: true, items: input, parameters: getImage });
		expect(failed.items?.[0].json.error).toBe("WeChat's QR image server failed (HTTP 502)");
		expect(String(failed.items?.[0].json.description)).toContain('The ticket may still be valid');
		expect(String(failed.items?.[0].json.description)).not.toContain('create a new ticket');
		expect(sim.requestsTo('/cgi-bin/showqrcode')).toHaveLength(retryTiming.maxAttempts);

		// The same ticket works once the server recovers; an unknown ticket is still a bad ticket (404).
		const recovered = await runNode({ store, credential, items: input, parameters: getImage });
		expect(recovered.items?.[0].binary?.data.mimeType).toBe('image/jpeg');
		const unknown = await runNode({ store, credential, continueOnFail: true, items: [{ json: { ticket: 'no-such-ticket' } }], parameters: getImage });
		expect(unknown.items?.[0].json.error).toBe('Invalid or expired QR ticket');
	});

	it('ends a 1,000-item batch under a 5% random fault rate with every item accounted for and no duplicate permanent code', async () => {
		const { store, credential } = newCredential();
		for (const fault of [{ errcode: -1 }, { httpStatus: 502 }, { drop: true }, { errcode: 45011 }, { errcode: 40001 }]) {
			sim.addFault({ path: '/cgi-bin/qrcode/create', probability: 0.01, seed: 1000 + (fault.errcode ?? fault.httpStatus ?? 7), ...fault });
		}
		const result = await runNode({
			store,
			credential,
			continueOnFail: true,
			items: items(1000),
			parameters: temporary({ qrType: '={{ $json.i % 2 ? "permanent" : "temporary" }}', sceneStr: '={{ "batch_" + $json.i }}', options: { concurrency: 10 } }),
		});
		const outputs = result.items ?? [];
		expect(outputs).toHaveLength(1000);
		const succeeded = outputs.filter((item) => typeof item.json.ticket === 'string');
		const failed = outputs.filter((item) => typeof item.json.error === 'string');
		expect(succeeded.length + failed.length).toBe(1000);
		expect(outputs.map((item) => item.pairedItem)).toEqual(items(1000).map(({ json }) => ({ item: json.i })));
		for (const item of failed) expect(String(item.json.error)).toMatch(/^(Could not reach WeChat|WeChat error)/);
		expect(succeeded.length).toBeGreaterThan(950);

		const permanentScenes = sim.tickets().filter((t) => String(t.scene).startsWith('batch_')).filter((t) => t.actionName === 'QR_LIMIT_STR_SCENE').map((t) => t.scene);
		expect(new Set(permanentScenes).size).toBe(permanentScenes.length);
		// Every permanent code WeChat created is reported to the user, except those whose answer was lost.
		const reported = new Set(succeeded.map((item) => item.json.scene));
		const unreported = permanentScenes.filter((scene) => !reported.has(scene));
		for (const scene of unreported) {
			const index = Number(String(scene).slice('batch_'.length));
			expect(String(outputs[index].json.description)).toContain('may or may not have created this permanent code');
		}
	});
});

describe('token fetch faults', () => {
	/** Tokens are shared per process and account for a minute: a WeChat of its own fetches afresh. */
	async function withOwnWeChat(run: (wechat: WeChatSimulator, credentials: ReturnType<typeof newCredential>) => Promise<void>) {
		const wechat = await startSimulator();
		try {
			const store = new CredentialStore();
			const credential = store.add('wechat', 'weChatOfficialAccountApi', { appId: wechat.appId, appSecret: wechat.appSecret, apiBaseUrl: wechat.apiBaseUrl, mpBaseUrl: wechat.mpBaseUrl });
			await run(wechat, { store, credential });
		} finally {
			await wechat.close();
		}
	}
	const permanent = { resource: 'qrCode', operation: 'createTicket', qrType: 'permanent', sceneType: 'string', sceneStr: '={{ "perm_" + $json.i }}' };

	it('gives up on a stable_token call that never answers after the request timeout', () =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			retryTiming.requestTimeoutMs = 300;
			wechat.addFault({ path: '/cgi-bin/stable_token', hang: true });
			const started = Date.now();
			const result = await runNode({ store, credential, parameters: temporary() });
			expect(result.error?.message).toBe('Could not reach WeChat (timed out)');
			// Three attempts of 300 ms, not n8n's default of 5 minutes.
			expect(Date.now() - started).toBeLessThan(5_000);
			expect(wechat.requestsTo('/cgi-bin/stable_token')).toHaveLength(3);
			expect(wechat.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(0);
		}));

	it('retries a token fetch that failed in transit for a permanent code too: the code itself was not sent yet', () =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			wechat.addFault({ path: '/cgi-bin/stable_token', drop: true, times: 1 });
			const result = await runNode({ store, credential, items: items(1), parameters: permanent });
			expect(result.error).toBeUndefined();
			expect(result.items?.[0].json.scene).toBe('perm_0');
			expect(wechat.requestsTo('/cgi-bin/stable_token')).toHaveLength(2);
			expect(wechat.tickets()).toHaveLength(1);
		}));

	it('does not claim a permanent code may exist when only its token fetch failed', () =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			wechat.addFault({ path: '/cgi-bin/stable_token', drop: true });
			const result = await runNode({ store, credential, items: items(1), parameters: permanent });
			expect(result.error?.message).toBe('Could not reach WeChat (connection reset)');
			expect(result.error?.description).not.toContain('may or may not have created');
			expect(wechat.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(0);
		}));

	it('explains an answer that is not WeChat\'s (an HTML page with HTTP 200) instead of calling it WeChat error 0', () =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			wechat.addFault({ path: '/cgi-bin/stable_token', httpStatus: 200 });
			const result = await runNode({ store, credential, parameters: temporary() });
			expect(result.error?.name).toBe('NodeApiError');
			expect(result.error?.message).toBe('Could not get a WeChat access token: the answer held no access_token');
			expect(result.error?.description).toContain('API base URL');
		}));

	it.each([89503, 40164, 40125])('asks for a token once per execution when WeChat refuses it with %i, and fails every item with that answer', (errcode) =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			wechat.addFault({ path: '/cgi-bin/stable_token', errcode });
			const result = await runNode({ store, credential, continueOnFail: true, items: items(20), parameters: temporary({ options: { concurrency: 5 } }) });
			expect(wechat.requestsTo('/cgi-bin/stable_token')).toHaveLength(1);
			expect(result.items).toHaveLength(20);
			for (const item of result.items ?? []) expect(String(item.json.error)).toContain(`WeChat error ${errcode}`);
		}));

	it('recovers from a token another system invalidated when the first refetch meets a connection reset', () =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			const parameters = { ...temporary(), options: { concurrency: 2 } };
			await runNode({ store, credential, parameters });
			wechat.reset();
			wechat.invalidateStableToken();
			// Both items meet 40001; the first refetch is reset while the second item waits for it.
			wechat.addFault({ path: '/cgi-bin/stable_token', drop: true, delayMs: 300, times: 1 });
			const result = await runNode({ store, credential, continueOnFail: true, items: items(2), parameters });
			expect(result.items?.map((item) => item.json.error)).toEqual([undefined, undefined]);
			expect(result.items?.map((item) => item.json.scene)).toEqual(['item_0', 'item_1']);
		}));

	it('still asks again after a busy answer (-1): that one is transient', () =>
		withOwnWeChat(async (wechat, { store, credential }) => {
			wechat.addFault({ path: '/cgi-bin/stable_token', errcode: -1, times: 1 });
			const result = await runNode({ store, credential, items: items(3), parameters: temporary() });
			expect(result.error).toBeUndefined();
			expect(wechat.requestsTo('/cgi-bin/stable_token')).toHaveLength(2);
		}));
});

describe('answers that report success without their data', () => {
	it.each([
		['/cgi-bin/qrcode/create', temporary(), 'ticket or url'],
		['/cgi-bin/qrcode/create', { ...temporary(), qrType: 'permanent' }, 'ticket or url'],
		['/cgi-bin/shorten/gen', { resource: 'shortLink', operation: 'createShortKey', longData: 'campaign', expireSeconds: 60 }, 'short_key'],
		['/cgi-bin/shorten/fetch', { resource: 'shortLink', operation: 'resolveShortKey', shortKey: 'abcdefghijklmno' }, 'long_data'],
	])('%s answering {"errcode":0} alone fails the item instead of outputting an empty result', async (path, parameters, fields) => {
		const { store, credential } = newCredential();
		sim.addFault({ path, errcode: 0 });
		const result = await runNode({ store, credential, parameters });
		expect(result.error?.name).toBe('NodeApiError');
		expect(result.error?.message).toBe(`WeChat's answer held no ${fields}`);
		expect(result.error?.description).toContain('API base URL');
	});
});

describe('QR images that break off, are too big, or fail after the code was created', () => {
	const TICKET = 'gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==';
	const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(4000, 7), Buffer.from([0xff, 0xd9])]);
	type Answer = (res: http.ServerResponse, request: number) => void;

	/** An image server of its own: `answer` decides what the n-th request (from 1) gets. */
	async function withImageServer(answer: Answer, run: (mpBaseUrl: string, requests: () => number) => Promise<void>) {
		let requests = 0;
		const server = http.createServer((req, res) => {
			req.resume();
			answer(res, ++requests);
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		try {
			await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, () => requests);
		} finally {
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		}
	}
	const getImage = (mpBaseUrl: string, continueOnFail = false) => {
		const store = new CredentialStore();
		const credential = store.add('wechat', 'weChatOfficialAccountApi', { appId: sim.appId, appSecret: sim.appSecret, apiBaseUrl: sim.apiBaseUrl, mpBaseUrl });
		return runNode({ store, credential, continueOnFail, items: [{ json: { ticket: TICKET } }], parameters: { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'data' } });
	};
	/** 200 image/jpg and the first 100 bytes, then the connection is reset, or left silent. */
	const breakOff = (how: 'reset' | 'stall') => (res: http.ServerResponse) => {
		res.writeHead(200, { 'content-type': 'image/jpg', 'content-length': jpeg.length });
		res.write(jpeg.subarray(0, 100), () => {
			if (how === 'reset') setTimeout(() => res.socket?.destroy(), 20);
		});
	};

	it.each(['reset', 'stall'] as const)('retries an image whose connection breaks off mid-body (%s) and stores the whole image', (how) => {
		retryTiming.requestTimeoutMs = 500;
		return withImageServer(
			(res, request) => (request === 1 ? breakOff(how)(res) : res.writeHead(200, { 'content-type': 'image/jpg' }).end(jpeg)),
			async (mpBaseUrl, requests) => {
				const result = await getImage(mpBaseUrl);
				expect(result.error).toBeUndefined();
				expect(result.items?.[0].binary?.data.bytes).toBe(jpeg.length);
				expect(requests()).toBe(2);
			},
		);
	});

	it('says the download broke off, with a hint, when it does so on every attempt', () =>
		withImageServer(breakOff('reset'), async (mpBaseUrl, requests) => {
			const result = await getImage(mpBaseUrl, true);
			expect(result.items?.[0].json.error).toBe('The QR image download broke off');
			expect(String(result.items?.[0].json.description)).toContain('QR Image Base URL');
			expect(requests()).toBe(retryTiming.maxAttempts);
		}));

	it.each([
		['declares', true],
		['does not declare', false],
	])('refuses an "image" over 2 MB that %s its length, without storing it', (_how, declared) =>
		withImageServer(
			(res) => {
				res.writeHead(200, { 'content-type': 'image/jpeg', ...(declared ? { 'content-length': 64 << 20 } : {}) });
				const chunk = Buffer.alloc(1 << 20, 0xff);
				let sent = 0;
				const pump = (): void => {
					while (sent < 64 && !res.destroyed) {
						sent++;
						if (!res.write(chunk)) return void res.once('drain', pump);
					}
					res.end();
				};
				pump();
			},
			async (mpBaseUrl, requests) => {
				const result = await getImage(mpBaseUrl, true);
				expect(result.items?.[0].json.error).toBe('The QR image server sent more than 2 MB');
				expect(result.items?.[0].binary).toBeUndefined();
				expect(requests()).toBe(1);
			},
		),
	);

	it('keeps the ticket of a permanent code WeChat created when its image then fails, and says not to run the item again', async () => {
		const { store, credential } = newCredential();
		sim.addFault({ path: '/cgi-bin/showqrcode', httpStatus: 502 });
		const parameters = { resource: 'qrCode', operation: 'createTicket', qrType: 'permanent', sceneType: 'string', sceneStr: '={{ $json.channel }}', options: { downloadImage: true } };
		const kept = await runNode({ store, credential, continueOnFail: true, items: [{ json: { channel: 'store_042' } }], parameters });
		const stopped = await runNode({ store, credential, items: [{ json: { channel: 'store_043' } }], parameters });

		const [first, second] = sim.tickets();
		expect(sim.tickets()).toHaveLength(2);
		expect(kept.items?.[0].json).toMatchObject({ ticket: first.ticket, url: first.url, scene: 'store_042', error: "The QR code was created, but: WeChat's QR image server failed (HTTP 502)" });
		expect(String(kept.items?.[0].json.description)).toContain('Do not run this item again');
		expect(kept.items?.[0].binary).toBeUndefined();
		expect(stopped.error?.message).toBe("The QR code was created, but: WeChat's QR image server failed (HTTP 502)");
		expect(stopped.error?.description).toContain(`ticket ${second.ticket}`);
	});
});
