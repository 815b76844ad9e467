import http from 'node:http';
import type { AddressInfo } from 'node:net';

import jpeg from 'jpeg-js';
import jsQR from 'jsqr';
import type { INodeExecutionData } from 'n8n-workflow';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { startSimulator, type WeChatSimulator } from './simulator';
import { CredentialStore, loggedLines, runNode, type NodeRunResult } from './helpers/n8nHarness';
import { readOutputSchema, schemaMismatches } from './helpers/outputSchema';

let sim: WeChatSimulator;

beforeAll(async () => {
	sim = await startSimulator();
});

afterAll(async () => {
	await sim.close();
});

beforeEach(() => {
	sim.reset();
});

function newCredential(data: Record<string, string> = {}, wechat: WeChatSimulator = sim) {
	const store = new CredentialStore();
	const credential = store.add('wechat', 'weChatOfficialAccountApi', {
		appId: wechat.appId,
		appSecret: wechat.appSecret,
		token: 'serverToken123',
		encodingAESKey: '',
		apiBaseUrl: wechat.apiBaseUrl,
		mpBaseUrl: `${wechat.mpBaseUrl}/`,
		...data,
	});
	return { store, credential };
}

function decodeQr(item: INodeExecutionData, property = 'data'): string | undefined {
	const binary = item.binary?.[property];
	expect(binary?.mimeType).toBe('image/jpeg');
	const image = jpeg.decode(Buffer.from(binary?.data ?? '', 'base64'), { useTArray: true });
	return jsQR(new Uint8ClampedArray(image.data.buffer), image.width, image.height)?.data;
}

/** Every text a user or a log could see from this run: output, errors, descriptions. */
function visibleText(result: NodeRunResult): string {
	return JSON.stringify({ items: result.items?.map((i) => i.json), error: result.error && { message: result.error.message, description: result.error.description, context: result.error.context } });
}

const createTicket = (parameters: Record<string, unknown>) => ({ resource: 'qrCode', operation: 'createTicket', ...parameters });
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ json: { i } }));

describe('Create QR Ticket', () => {
	it('creates a temporary numeric-scene code with the right body, and its image URL works', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 4294967295, expireSeconds: 86400 }) });
		expect(result.error).toBeUndefined();
		const [item] = result.items ?? [];
		expect(item.json).toMatchObject({ qrType: 'temporary', actionName: 'QR_SCENE', scene: 4294967295, expireSeconds: 86400 });
		expect(Date.parse(String(item.json.expiresAt)) - Date.now()).toBeGreaterThan(86_000_000);
		expect(item.json.url).toMatch(/^http:\/\/weixin\.qq\.com\/q\//);
		expect(item.json.imageUrl).toBe(`${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(String(item.json.ticket))}`);
		expect(item.pairedItem).toEqual({ item: 0 });

		const [sent] = sim.requestsTo('/cgi-bin/qrcode/create');
		expect(sent.body).toEqual({ action_name: 'QR_SCENE', action_info: { scene: { scene_id: 4294967295 } }, expire_seconds: 86400 });
		const image = await fetch(String(item.json.imageUrl));
		expect(image.status).toBe(200);
	});

	it('creates a permanent string-scene code (QR_LIMIT_STR_SCENE, no expiry) with its image attached', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({
			store,
			credential,
			parameters: createTicket({ qrType: 'permanent', sceneType: 'string', sceneStr: '门店_上海_042', options: { downloadImage: true, binaryPropertyName: 'qr' } }),
		});
		expect(result.error).toBeUndefined();
		const [item] = result.items ?? [];
		expect(item.json).toMatchObject({ actionName: 'QR_LIMIT_STR_SCENE', scene: '门店_上海_042', expireSeconds: null, expiresAt: null });
		expect(sim.requestsTo('/cgi-bin/qrcode/create')[0].body).toEqual({ action_name: 'QR_LIMIT_STR_SCENE', action_info: { scene: { scene_str: '门店_上海_042' } } });
		expect(decodeQr(item, 'qr')).toBe(item.json.url);
		expect(item.binary?.qr.fileName).toMatch(/^qrcode-.*\.jpg$/);
	});

	it('fails only the invalid items, naming the parameter and range, and never calls WeChat for them', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({
			store,
			credential,
			continueOnFail: true,
			items: [{ json: { id: 5 } }, { json: { id: 100001 } }, { json: { id: 7 } }, { json: { id: 'x' } }],
			parameters: createTicket({ qrType: 'permanent', sceneType: 'id', sceneId: '={{ $json.id }}' }),
		});
		const outputs = result.items ?? [];
		expect(outputs.map((o) => o.pairedItem)).toEqual([{ item: 0 }, { item: 1 }, { item: 2 }, { item: 3 }]);
		expect(outputs[0].json.scene).toBe(5);
		expect(outputs[1].json.error).toBe('sceneId must be a whole number from 1 to 100000; got 100001');
		expect(outputs[2].json.scene).toBe(7);
		expect(String(outputs[3].json.error)).toContain('sceneId must be a whole number from 1 to 100000');
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(2);
	});

	it('with On Error "Continue (using error output)", sends the failed items to the error output', async () => {
		const { store, credential } = newCredential();
		sim.addFault({ path: '/cgi-bin/qrcode/create', errcode: 48001, times: 1 });
		const result = await runNode({
			store,
			credential,
			onError: 'continueErrorOutput',
			items: [{ json: { channel: 'store_1' } }, { json: { channel: '' } }, { json: { channel: 'store_3' } }, { json: { channel: 'store_4' } }],
			parameters: createTicket({ qrType: 'temporary', sceneType: 'string', sceneStr: '={{ $json.channel }}', expireSeconds: 600, options: { concurrency: 1 } }),
		});
		expect(result.error).toBeUndefined();
		const [succeeded, failed] = result.outputs ?? [];
		// Item 0 met WeChat's 48001, item 1 an empty scene; items 2 and 3 went through.
		expect(succeeded.map((item) => [item.pairedItem, item.json.scene])).toEqual([
			[{ item: 2 }, 'store_3'],
			[{ item: 3 }, 'store_4'],
		]);
		expect(failed.map((item) => item.pairedItem)).toEqual([{ item: 0 }, { item: 1 }]);
		// n8n's names for an error item; it adds the input item's fields when the node has a predecessor.
		expect(failed[0].json).toEqual({ error: 'WeChat error 48001: API unauthorized', details: expect.stringContaining('Service Account') });
		expect(failed[1].json).toEqual({ error: 'sceneStr must be 1 to 64 characters long; got 0 characters', details: 'Fix the "sceneStr" parameter of this item.' });
	});

	it('stops at the first invalid item without Continue On Fail, with a NodeOperationError', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'string', sceneStr: 'x'.repeat(65), expireSeconds: 600 }) });
		expect(result.error?.name).toBe('NodeOperationError');
		expect(result.error?.message).toBe('sceneStr must be 1 to 64 characters long; got 65 characters');
		expect(result.error?.description).toContain('sceneStr');
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(0);
	});

	it('refuses expireSeconds outside 60..2592000', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({ store, credential, continueOnFail: true, items: items(2), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: '={{ $json.i === 0 ? 59 : 2592001 }}' }) });
		expect(result.items?.map((o) => o.json.error)).toEqual([
			'expireSeconds must be a whole number from 60 to 2592000; got 59',
			'expireSeconds must be a whole number from 60 to 2592000; got 2592001',
		]);
	});
});

describe('Get QR Image', () => {
	it('downloads the JPEG of a ticket into binary data; the QR decodes to the ticket URL', async () => {
		const { store, credential } = newCredential();
		const created = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'string', sceneStr: 'poster', expireSeconds: 600 }) });
		const ticket = String(created.items?.[0].json.ticket);
		expect(ticket).toMatch(/[+/]/);
		const result = await runNode({ store, credential, items: [{ json: { ticket } }], parameters: { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'image' } });
		expect(result.error).toBeUndefined();
		const [item] = result.items ?? [];
		expect(decodeQr(item, 'image')).toBe(created.items?.[0].json.url);
		expect(item.json).toMatchObject({ ticket, mimeType: 'image/jpeg' });
		expect(Number(item.json.fileSize)).toBeGreaterThan(500);
	});

	it('keeps the binary fields the input item already had, in Get QR Image and in Create QR Ticket with its image', async () => {
		const { store, credential } = newCredential();
		const logo = { data: Buffer.from('logo-bytes').toString('base64'), mimeType: 'image/png', fileName: 'logo.png' };
		const created = await runNode({ store, credential, items: [{ json: { channel: 'poster' }, binary: { logo } }], parameters: createTicket({ qrType: 'temporary', sceneType: 'string', sceneStr: '={{ $json.channel }}', expireSeconds: 600, options: { downloadImage: true } }) });
		expect(Object.keys(created.items?.[0].binary ?? {}).sort()).toEqual(['data', 'logo']);
		const fetched = await runNode({ store, credential, items: [{ json: { ticket: created.items?.[0].json.ticket }, binary: { logo, qr: logo } }], parameters: { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'qr' } });
		const binary = fetched.items?.[0].binary ?? {};
		expect(Object.keys(binary).sort()).toEqual(['logo', 'qr']);
		// A field of the same name is replaced by the image.
		expect(binary.qr.mimeType).toBe('image/jpeg');
		expect(Buffer.from(binary.logo.data, 'base64').toString()).toBe('logo-bytes');
	});

	it('reports an unknown or expired ticket clearly, per item', async () => {
		const { store, credential } = newCredential();
		const created = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 9, expireSeconds: 60 }) });
		const ticket = String(created.items?.[0].json.ticket);
		sim.advanceTime(61);
		const result = await runNode({
			store,
			credential,
			continueOnFail: true,
			items: [{ json: { ticket } }, { json: { ticket: 'gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==' } }, { json: { ticket: '' } }],
			parameters: { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'data' },
		});
		const outputs = result.items ?? [];
		expect(outputs[0].json.error).toBe('Invalid or expired QR ticket');
		expect(String(outputs[0].json.description)).toContain('HTTP 404');
		expect(outputs[0].binary).toBeUndefined();
		expect(outputs[1].json.error).toBe('Invalid or expired QR ticket');
		expect(String(outputs[2].json.error)).toContain('ticket must be the ticket string');
	});
});

describe('Short links', () => {
	it('explains that WeChat no longer shortens URLs and points to short keys', async () => {
		const { store, credential } = newCredential();
		const result = await runNode({ store, credential, parameters: { resource: 'shortLink', operation: 'shortenUrl', longUrl: 'https://example.com/spring?channel=poster', options: {} } });
		expect(result.error?.message).toBe('WeChat no longer shortens URLs');
		expect(result.error?.description).toContain('Create Short Key');
		expect(sim.requestsTo('/cgi-bin/shorturl')[0].body).toEqual({ action: 'long2short', long_url: 'https://example.com/spring?channel=poster' });
	});

	it('returns the original URL when asked to, also when WeChat answers 45103', async () => {
		for (const mode of ['echo', 'retired'] as const) {
			const retired = await startSimulator({ shortUrlMode: mode });
			try {
				const { store, credential } = newCredential({ apiBaseUrl: retired.apiBaseUrl, appId: retired.appId, appSecret: retired.appSecret });
				const result = await runNode({ store, credential, parameters: { resource: 'shortLink', operation: 'shortenUrl', longUrl: 'https://example.com/a', options: { returnOriginalIfNotShortened: true } } });
				expect(result.items?.[0].json).toEqual({ longUrl: 'https://example.com/a', shortUrl: 'https://example.com/a', shortened: false });
			} finally {
				await retired.close();
			}
		}
	});

	it('stores and resolves campaign data behind a short key', async () => {
		const { store, credential } = newCredential();
		const longData = JSON.stringify({ campaign: '春季促销', store: 42, coupon: 'A7'.repeat(100) });
		const created = await runNode({ store, credential, parameters: { resource: 'shortLink', operation: 'createShortKey', longData, expireSeconds: 3600 } });
		const shortKey = String(created.items?.[0].json.shortKey);
		expect(shortKey).toMatch(/^[A-Za-z0-9]{15}$/);
		sim.advanceTime(100);
		const resolved = await runNode({ store, credential, items: [{ json: { scene: shortKey } }], parameters: { resource: 'shortLink', operation: 'resolveShortKey', shortKey: '={{ $json.scene }}' } });
		expect(resolved.items?.[0].json).toMatchObject({ shortKey, longData });
		// The time remaining: 3600 minus the 100 s that passed (and a fraction of a second of real time).
		expect([3499, 3500]).toContain(resolved.items?.[0].json.expireSeconds);
		expect(typeof resolved.items?.[0].json.createTime).toBe('number');
	});

	it('refuses long data over 4 KB before calling WeChat, and explains an unknown key', async () => {
		const { store, credential } = newCredential();
		const tooLong = await runNode({ store, credential, parameters: { resource: 'shortLink', operation: 'createShortKey', longData: '码'.repeat(1400), expireSeconds: 60 } });
		expect(tooLong.error?.message).toBe('longData must be 1 to 4096 bytes of UTF-8 text; got 4200 bytes');
		expect(sim.requestsTo('/cgi-bin/shorten/gen')).toHaveLength(0);
		const unknown = await runNode({ store, credential, parameters: { resource: 'shortLink', operation: 'resolveShortKey', shortKey: 'AAAAAAAAAAAAAAA' } });
		expect(unknown.error?.name).toBe('NodeApiError');
		expect(unknown.error?.message).toBe('WeChat error 9410012: Short key unknown, expired or from another account');
	});
});

describe('access token', () => {
	// Tokens are shared per process and account for a minute, so tests that count first fetches get a
	// WeChat of their own.
	async function withOwnWeChat(test: (wechat: WeChatSimulator) => Promise<void>): Promise<void> {
		const wechat = await startSimulator();
		try {
			await test(wechat);
		} finally {
			await wechat.close();
		}
	}

	it('uses one stable token for 1,000 items, persists it, and reuses it in the next execution', () =>
		withOwnWeChat(async (wechat) => {
			const { store, credential } = newCredential({}, wechat);
			const result = await runNode({ store, credential, items: items(1000), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: '={{ $json.i + 1 }}', expireSeconds: 600 }) });
			expect(result.error).toBeUndefined();
			expect(result.items).toHaveLength(1000);
			expect(new Set(result.items?.map((i) => i.json.scene)).size).toBe(1000);
			expect(wechat.tokenFetches()).toBe(1);
			expect(wechat.requestsTo('/cgi-bin/stable_token')[0]).toMatchObject({ method: 'POST', body: { grant_type: 'client_credential', appid: wechat.appId, force_refresh: false } });
			expect(wechat.requestsTo('/cgi-bin/token')).toHaveLength(0);
			const persisted = store.stored('wechat').accessToken;
			expect(wechat.issuedTokens()).toContain(persisted);

			await runNode({ store, credential, items: items(3), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
			expect(wechat.tokenFetches()).toBe(1);
		}));

	it('fetches one token for 8 executions that start together, each with a credential read before any token was saved', () =>
		withOwnWeChat(async (wechat) => {
			// Like a queue-mode worker taking 8 jobs at once: n8n runs preAuthentication in each, without a lock.
			const runs = await Promise.all(
				Array.from({ length: 8 }, (_, i) => {
					const { store, credential } = newCredential({}, wechat);
					return runNode({ store, credential, items: items(5), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: i + 1, expireSeconds: 600, options: { concurrency: 5 } }) }).then((result) => ({ result, store }));
				}),
			);
			for (const { result } of runs) {
				expect(result.error).toBeUndefined();
				expect(result.items).toHaveLength(5);
			}
			expect(wechat.tokenFetches()).toBe(1);
			expect(new Set(runs.map(({ store }) => store.stored('wechat').accessToken))).toEqual(new Set(wechat.issuedTokens()));
			expect(wechat.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(40);
		}));

	it.each([
		[1, 6],
		[5, 10],
	])('refetches once when the token expires mid-batch (concurrency %i): each refused call replayed once, no forced refresh', async (concurrency, creates) => {
		const { store, credential } = newCredential();
		await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
		const before = store.stored('wechat').accessToken;
		sim.reset();
		sim.expireAllTokens();
		const result = await runNode({ store, credential, items: items(5), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 2, expireSeconds: 600, options: { concurrency } }) });
		expect(result.error).toBeUndefined();
		expect(result.items?.map((item) => item.pairedItem)).toEqual([0, 1, 2, 3, 4].map((item) => ({ item })));
		expect(sim.tokenFetches()).toBe(1);
		expect(sim.requestsTo('/cgi-bin/stable_token').map((r) => (r.body as { force_refresh: boolean }).force_refresh)).toEqual([false]);
		// Sequentially only the first call meets the expired token; in parallel every call in flight does.
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(creates);
		expect(store.stored('wechat').accessToken).not.toBe(before);
	});

	it('forces one refresh only when WeChat hands back the very token it refused', async () => {
		const { store, credential } = newCredential({ appId: sim.appId });
		await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
		sim.reset();
		// WeChat says 40001 for a token that stable_token (normal mode) still returns.
		sim.addFault({ path: '/cgi-bin/qrcode/create', errcode: 40001, times: 1 });
		const result = await runNode({ store, credential, items: items(3), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 3, expireSeconds: 600 }) });
		expect(result.error).toBeUndefined();
		expect(sim.requestsTo('/cgi-bin/stable_token').map((r) => (r.body as { force_refresh: boolean }).force_refresh)).toEqual([false, true]);

		// Within 30 s another refusal gets a normal refetch and replay only, and then a clear error.
		sim.reset();
		sim.addFault({ path: '/cgi-bin/qrcode/create', errcode: 40001, times: 2 });
		const again = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 3, expireSeconds: 600 }) });
		expect(sim.requestsTo('/cgi-bin/stable_token').map((r) => (r.body as { force_refresh: boolean }).force_refresh)).toEqual([false]);
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(2);
		expect(again.error?.message).toContain('WeChat error 40001');
	});

	it('recovers when another system invalidated the stable token', async () => {
		const { store, credential } = newCredential();
		await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
		sim.reset();
		sim.invalidateStableToken();
		const result = await runNode({ store, credential, items: items(2), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
		expect(result.error).toBeUndefined();
		expect(sim.requestsTo('/cgi-bin/stable_token')).toHaveLength(1);
	});

	it("never creates codes with the old account's token after the AppID was edited: it asks for the new AppID's", async () => {
		const { store, credential } = newCredential();
		const ticket = createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 });
		await runNode({ store, credential, parameters: ticket });
		const oldAccountToken = store.stored('wechat').accessToken;
		expect(store.stored('wechat').accessTokenAppId).toBe(sim.appId);

		// Edited without a credential test (through n8n's API, say): another account, its token not fetched yet.
		store.set('wechat', { ...store.stored('wechat'), appId: ' wxanotheraccount01 ', appSecret: 'another-accounts-secret' });
		sim.reset();
		const result = await runNode({ store, credential, parameters: ticket });
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(0);
		expect(sim.requestsTo('/cgi-bin/stable_token')[0]).toMatchObject({ body: { appid: 'wxanotheraccount01' } });
		// This simulator knows only the first account.
		expect(result.error?.message).toContain('WeChat error 40013');
		expect(visibleText(result)).not.toContain(String(oldAccountToken));
	});

	it('fetches once for a token stored without its AppID (by an earlier version), then reuses the new one', async () => {
		const { store, credential } = newCredential();
		const ticket = createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 });
		await runNode({ store, credential, parameters: ticket });
		const earlierVersion = store.stored('wechat');
		delete earlierVersion.accessTokenAppId;
		store.set('wechat', earlierVersion);
		const writes = store.updates.length;
		for (let run = 0; run < 3; run++) expect((await runNode({ store, credential, parameters: ticket })).error).toBeUndefined();
		// One token step, which this process answers from the token it fetched a moment ago; then none.
		expect(store.updates.length - writes).toBe(1);
		expect(store.stored('wechat').accessTokenAppId).toBe(sim.appId);
	});

	it.each([
		['a wrong AppSecret', { appSecret: 'wrong-secret-value' }, 'WeChat error 40125', 'AppSecret'],
		['a wrong AppID', { appId: 'wxnotmyapp0000000' }, 'WeChat error 40013', 'AppID'],
	] as Array<[string, Record<string, string>, string, string]>)('fails clearly on %s', async (_name, data, message, hint) => {
		const { store, credential } = newCredential(data);
		const result = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
		expect(result.error?.name).toBe('NodeApiError');
		expect(result.error?.message).toContain(message);
		expect(result.error?.description).toContain(hint);
		expect(store.stored('wechat').accessToken ?? '').toBe('');
		expect(visibleText(result)).not.toContain(data.appSecret ?? sim.appSecret);
	});

	it('names the IP to add when the caller is not on the allow-list', async () => {
		const { store, credential } = newCredential();
		sim.setAllowedIps(['203.0.113.7']);
		try {
			const result = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
			expect(result.error?.message).toContain('WeChat error 40164');
			expect(result.error?.description).toMatch(/Add 127\.0\.0\.1 .*whitelist/);
		} finally {
			sim.setAllowedIps(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
		}
	});

	describe('renewing the token before it expires', () => {
		/** A simulator of its own: moving its clock and this process's must not leak into other tests' tokens. */
		async function withOwnWeChat(options: { tokenTtlSeconds?: number }, run: (wechat: WeChatSimulator) => Promise<void>) {
			const wechat = await startSimulator(options);
			try {
				await run(wechat);
			} finally {
				vi.useRealTimers();
				await wechat.close();
			}
		}
		/** Moves this process's clock (Date only) and the simulator's by the same amount. */
		function advanceBoth(wechat: WeChatSimulator, seconds: number) {
			vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + seconds * 1000 });
			wechat.advanceTime(seconds);
		}
		const forceFlags = (wechat: WeChatSimulator) => wechat.requestsTo('/cgi-bin/stable_token').map((r) => (r.body as { force_refresh: boolean }).force_refresh);

		it.each([
			['in its last five minutes', 7200 - 240],
			['after it expired during a quiet spell', 3 * 3600],
		])('fetches the next token before using one %s, so no call meets 42001', async (_when, seconds) =>
			withOwnWeChat({}, async (wechat) => {
				const { store, credential } = newCredential({}, wechat);
				await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
				const first = store.stored('wechat');
				expect(Number(first.accessTokenExpiresAt)).toBeGreaterThan(Date.now() + 7_100_000);

				wechat.reset();
				advanceBoth(wechat, seconds);
				const result = await runNode({ store, credential, items: items(5), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 2, expireSeconds: 600, options: { concurrency: 5 } }) });
				expect(result.error).toBeUndefined();
				const renewed = store.stored('wechat');
				expect(renewed.accessToken).not.toBe(first.accessToken);
				expect(Number(renewed.accessTokenExpiresAt)).toBeGreaterThan(Date.now() + 7_100_000);
				expect(forceFlags(wechat)).toEqual([false]);
				const creates = wechat.requestsTo('/cgi-bin/qrcode/create');
				expect(creates).toHaveLength(5);
				expect(new Set(creates.map((r) => r.query.access_token))).toEqual(new Set([renewed.accessToken]));
			}));

		it('asks at most once per execution when WeChat hands back the same short-lived token', async () =>
			withOwnWeChat({ tokenTtlSeconds: 400 }, async (wechat) => {
				// A 400 s token is rotated only in its last 200 s, so at 250 s left WeChat returns it unchanged.
				const { store, credential } = newCredential({}, wechat);
				await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
				const first = store.stored('wechat').accessToken;
				wechat.reset();
				advanceBoth(wechat, 150);
				const result = await runNode({ store, credential, items: items(5), parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 2, expireSeconds: 600, options: { concurrency: 2 } }) });
				expect(result.error).toBeUndefined();
				expect(forceFlags(wechat)).toEqual([false]);
				expect(store.stored('wechat').accessToken).toBe(first);
				expect(wechat.requestsTo('/cgi-bin/qrcode/create')).toHaveLength(5);
			}));
	});

	describe('an API base URL that answers with a redirect', () => {
		interface Seen {
			method: string;
			url: string;
			body: string;
		}
		/**
		 * A redirector (like a relay configured with the wrong scheme, or a hijacked plain-HTTP address) that sends
		 * every request on to a catcher on another origin, query string included, as `$request_uri` does.
		 */
		async function withRedirector(status: number, run: (redirector: string, caught: Seen[]) => Promise<void>) {
			const caught: Seen[] = [];
			const catcher = http.createServer((req, res) => {
				let body = '';
				req.on('data', (chunk: Buffer) => (body += chunk.toString()));
				req.on('end', () => {
					caught.push({ method: req.method ?? '', url: req.url ?? '', body });
					res.setHeader('content-type', 'application/json');
					res.end(JSON.stringify({ access_token: 'caught-token', expires_in: 7200, ticket: 'caught-ticket', url: 'http://weixin.qq.com/q/caught' }));
				});
			});
			const redirector = http.createServer((req, res) => {
				req.resume();
				res.writeHead(status, { location: `${origin(catcher)}${req.url ?? '/'}` }).end();
			});
			const origin = (server: http.Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
			await Promise.all([catcher, redirector].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
			try {
				await run(origin(redirector), caught);
			} finally {
				await Promise.all([catcher, redirector].map((server) => new Promise((resolve) => server.close(resolve))));
			}
		}

		it.each([307, 308, 301, 302])('sends neither the AppSecret nor the token on after HTTP %i, and says the URL redirects', (status) =>
			withRedirector(status, async (redirector, caught) => {
				// No token yet: the first call is stable_token, whose body carries the AppSecret.
				const fresh = newCredential({ apiBaseUrl: redirector });
				const first = await runNode({ ...fresh, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
				// A token already stored: the call carries it in its query string.
				const stored = newCredential({ apiBaseUrl: redirector, accessToken: 'stored-token-value', accessTokenExpiresAt: String(Date.now() + 3_600_000), accessTokenAppId: sim.appId });
				const second = await runNode({ ...stored, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });

				expect(caught).toEqual([]);
				for (const result of [first, second]) {
					expect(result.error?.name).toBe('NodeApiError');
					expect(result.error?.message).toContain(`redirect (HTTP ${status})`);
					// Where it pointed, so the user can fix the URL, but without the query that held the token.
					expect(result.error?.description).toMatch(/API Base URL redirects to http:\/\/127\.0\.0\.1:\d+\/cgi-bin\/(stable_token|qrcode\/create)\. /);
					expect(visibleText(result)).not.toMatch(/access_token=|stored-token-value/);
					expect(visibleText(result)).not.toContain(sim.appSecret);
				}
			}),
		);
	});

	it('keeps secrets and tokens out of every error text, even for transport failures', async () => {
		const { store, credential } = newCredential();
		await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
		const token = String(store.stored('wechat').accessToken);
		const texts: string[] = [];
		for (const fault of [{ httpStatus: 502 }, { drop: true }, { errcode: 48001 }, { errcode: 45009 }]) {
			sim.clearFaults();
			sim.addFault({ path: '/cgi-bin/qrcode/create', ...fault });
			const result = await runNode({ store, credential, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) });
			expect(result.error?.name).toBe('NodeApiError');
			texts.push(visibleText(result), String(result.error?.stack));
		}
		sim.clearFaults();
		// What n8n and the node logged during these runs is searched too.
		expect(loggedLines.join('\n')).toContain('WeChat error 45009');
		const all = [...texts, ...loggedLines].join('\n');
		expect(all).toContain('WeChat error 48001');
		expect(all).toContain('WeChat error 45009');
		for (const secret of [token, sim.appSecret, 'serverToken123', ...sim.issuedTokens()]) expect(all).not.toContain(secret);
	});
});

describe('output schemas for the editor', () => {
	/** Each case gets its input item from a real run where it needs one (a ticket, a short key). */
	const cases: Array<[string, string, string, (run: typeof runNode, creds: ReturnType<typeof newCredential>) => Promise<NodeRunResult>]> = [
		['qrCode', 'createTicket', 'a temporary numeric scene', (run, creds) => run({ ...creds, parameters: createTicket({ qrType: 'temporary', sceneType: 'id', sceneId: 1, expireSeconds: 600 }) })],
		['qrCode', 'createTicket', 'a permanent text scene', (run, creds) => run({ ...creds, parameters: createTicket({ qrType: 'permanent', sceneType: 'string', sceneStr: 'store_1' }) })],
		[
			'qrCode',
			'getImage',
			'an image',
			async (run, creds) => {
				const created = await run({ ...creds, parameters: createTicket({ qrType: 'temporary', sceneType: 'string', sceneStr: 'p', expireSeconds: 600 }) });
				return await run({ ...creds, items: [{ json: { ticket: created.items?.[0].json.ticket } }], parameters: { resource: 'qrCode', operation: 'getImage', ticket: '={{ $json.ticket }}', binaryPropertyName: 'data' } });
			},
		],
		['shortLink', 'createShortKey', 'a key', (run, creds) => run({ ...creds, parameters: { resource: 'shortLink', operation: 'createShortKey', longData: 'x', expireSeconds: 60 } })],
		[
			'shortLink',
			'resolveShortKey',
			'a key',
			async (run, creds) => {
				const created = await run({ ...creds, parameters: { resource: 'shortLink', operation: 'createShortKey', longData: 'campaign data', expireSeconds: 600 } });
				return await run({ ...creds, items: [{ json: { key: created.items?.[0].json.shortKey } }], parameters: { resource: 'shortLink', operation: 'resolveShortKey', shortKey: '={{ $json.key }}' } });
			},
		],
		['shortLink', 'shortenUrl', 'the URL kept', (run, creds) => run({ ...creds, parameters: { resource: 'shortLink', operation: 'shortenUrl', longUrl: 'https://example.com', options: { returnOriginalIfNotShortened: true } } })],
	];

	it.each(cases)('%s/%s lists exactly the fields of its output, with their types (%s)', async (resource, operation, _case, produce) => {
		const schema = readOutputSchema(`nodes/WeChatQrCode/__schema__/v1.0.0/${resource}/${operation}.json`);
		const result = await produce(runNode, newCredential());
		expect(result.error).toBeUndefined();
		const output = result.items?.[0].json ?? {};
		expect(Object.keys(schema.properties ?? {}).sort()).toEqual(Object.keys(output).sort());
		expect(schemaMismatches(schema, output)).toEqual([]);
	});
});
