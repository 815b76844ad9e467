import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { decode as decodeJpeg } from 'jpeg-js';
import jsQR from 'jsqr';
import { startSimulator } from './simulator';
import type { SimulatorOptions, WeChatSimulator } from './simulator';

/** Noon in Beijing, so advancing a few hours never crosses WeChat's quota day. */
const NOON_BEIJING_MS = Date.UTC(2024, 0, 15, 4, 0, 0);
const fixedClock = (): number => NOON_BEIJING_MS;
const RID = / rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;

type Json = Record<string, unknown>;

async function call(
	sim: WeChatSimulator,
	path: string,
	init: { method?: string; body?: unknown; rawBody?: string; query?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<{ status: number; json: Json; headers: Headers }> {
	const url = new URL(path, sim.apiBaseUrl);
	for (const [key, value] of Object.entries(init.query ?? {})) url.searchParams.set(key, value);
	const body = init.rawBody ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
	const response = await fetch(url, {
		method: init.method ?? (body === undefined ? 'GET' : 'POST'),
		body,
		headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
		signal: init.signal,
	});
	const text = await response.text();
	return { status: response.status, json: JSON.parse(text) as Json, headers: response.headers };
}

function stableToken(sim: WeChatSimulator, extra: Json = {}): Promise<{ status: number; json: Json }> {
	return call(sim, '/cgi-bin/stable_token', {
		body: { grant_type: 'client_credential', appid: sim.appId, secret: sim.appSecret, ...extra },
	});
}

async function token(sim: WeChatSimulator, forceRefresh = false): Promise<string> {
	const { json } = await stableToken(sim, { force_refresh: forceRefresh });
	expect(typeof json.access_token).toBe('string');
	return json.access_token as string;
}

function classicToken(sim: WeChatSimulator, appid = sim.appId, secret = sim.appSecret): Promise<{ json: Json }> {
	return call(sim, '/cgi-bin/token', { query: { grant_type: 'client_credential', appid, secret } });
}

/** errcode of a cheap authenticated call (0 when the token works). */
async function tokenState(sim: WeChatSimulator, accessToken: string): Promise<number> {
	const { json } = await call(sim, '/cgi-bin/getcallbackip', { query: { access_token: accessToken } });
	return typeof json.errcode === 'number' ? json.errcode : 0;
}

async function createQr(sim: WeChatSimulator, accessToken: string, body: unknown): Promise<Json> {
	const { status, json } = await call(sim, '/cgi-bin/qrcode/create', { body, query: { access_token: accessToken } });
	expect(status).toBe(200);
	return json;
}

async function withSimulator<T>(options: SimulatorOptions, run: (sim: WeChatSimulator) => Promise<T>): Promise<T> {
	const sim = await startSimulator(options);
	try {
		return await run(sim);
	} finally {
		await sim.close();
	}
}

describe('access tokens', () => {
	let sim: WeChatSimulator;
	beforeAll(async () => {
		sim = await startSimulator({ now: fixedClock });
	});
	afterAll(async () => {
		await sim.close();
	});

	it('normal mode returns the same WeChat-shaped token with the remaining lifetime', async () => {
		const first = await stableToken(sim);
		expect(first.status).toBe(200);
		expect(first.json.expires_in).toBe(7200);
		expect(first.json.errcode).toBeUndefined();
		expect(first.json.access_token).toMatch(/^[A-Za-z0-9_-]{100,}$/);
		sim.advanceTime(100);
		const second = await stableToken(sim);
		expect(second.json.access_token).toBe(first.json.access_token);
		expect(second.json.expires_in).toBe(7100);
		expect(sim.issuedTokens()).toContain(first.json.access_token);
	});

	it('rotates in the last 5 minutes while the old token stays valid until its expiry', async () => {
		const old = await token(sim);
		const remaining = (await stableToken(sim)).json.expires_in as number;
		sim.advanceTime(remaining - 200);
		const rotated = await token(sim);
		expect(rotated).not.toBe(old);
		expect(await tokenState(sim, old)).toBe(0);
		expect(await tokenState(sim, rotated)).toBe(0);
		sim.advanceTime(200);
		expect(await tokenState(sim, old)).toBe(42001);
		expect(await tokenState(sim, rotated)).toBe(0);
		expect(await token(sim)).toBe(rotated);
	});

	it('force_refresh invalidates the previous token, ignores calls within 30 s and allows 20 a day', async () => {
		await withSimulator({ now: fixedClock }, async (fresh) => {
			const original = await token(fresh);
			const forced = await token(fresh, true);
			expect(forced).not.toBe(original);
			expect(await tokenState(fresh, original)).toBe(40001);
			fresh.advanceTime(10);
			expect(await token(fresh, true)).toBe(forced);
			fresh.advanceTime(25);
			const again = await token(fresh, true);
			expect(again).not.toBe(forced);
			expect(await tokenState(fresh, forced)).toBe(40001);
			// Two refreshes so far; 18 more are allowed today, the 21st is refused.
			for (let i = 0; i < 18; i++) {
				fresh.advanceTime(31);
				expect((await stableToken(fresh, { force_refresh: true })).json.access_token).toBeTypeOf('string');
			}
			fresh.advanceTime(31);
			const refused = await stableToken(fresh, { force_refresh: true });
			expect(refused.json.errcode).toBe(45009);
			expect(refused.json.errmsg).toMatch(RID);
			// Normal mode is unaffected by the force quota.
			expect((await stableToken(fresh)).json.access_token).toBeTypeOf('string');
		});
	});

	it('invalidateStableToken simulates another system force-refreshing', async () => {
		const before = await token(sim);
		sim.invalidateStableToken();
		expect(await tokenState(sim, before)).toBe(40001);
		const after = await token(sim);
		expect(after).not.toBe(before);
		expect(await tokenState(sim, after)).toBe(0);
	});

	it('classic token issues a new token per call; the previous one dies after 5 minutes; stable is isolated', async () => {
		const stable = await token(sim);
		const first = (await classicToken(sim)).json;
		expect(first.expires_in).toBe(7200);
		const firstToken = first.access_token as string;
		const secondToken = (await classicToken(sim)).json.access_token as string;
		expect(secondToken).not.toBe(firstToken);
		expect(await tokenState(sim, firstToken)).toBe(0);
		sim.advanceTime(301);
		expect(await tokenState(sim, firstToken)).toBe(40001);
		expect(await tokenState(sim, secondToken)).toBe(0);
		expect(await tokenState(sim, stable)).toBe(0);
		expect(await token(sim)).toBe(stable);
	});

	it('answers the documented errcodes for bad token requests', async () => {
		const ask = async (body: Json): Promise<number> => (await stableToken(sim, body)).json.errcode as number;
		expect(await ask({ appid: 'wx0000000000000000' })).toBe(40013);
		expect(await ask({ appid: 'wx0000000000000000', secret: 'wrong' })).toBe(40013); // appid checked first
		expect(await ask({ secret: 'wrong' })).toBe(40125);
		expect(await ask({ grant_type: 'password' })).toBe(40002);
		expect(await ask({ appid: undefined })).toBe(41002);
		expect(await ask({ secret: undefined })).toBe(41004);
		const get = await call(sim, '/cgi-bin/stable_token');
		expect(get.status).toBe(200);
		expect(get.json.errcode).toBe(43002);
		expect((await call(sim, '/cgi-bin/stable_token', { rawBody: 'grant_type=client_credential' })).json.errcode).toBe(47001);
		expect((await call(sim, '/cgi-bin/stable_token', { method: 'POST', rawBody: '' })).json.errcode).toBe(44002);
		expect((await classicToken(sim, 'wx0000000000000000')).json.errcode).toBe(40013);
		expect((await classicToken(sim, sim.appId, 'wrong')).json.errcode).toBe(40125);
	});

	it('rejects callers outside the IP allow-list with 40164 naming the IP', async () => {
		const valid = await token(sim);
		sim.setAllowedIps(['203.0.113.7']);
		try {
			for (const response of [await stableToken(sim), await classicToken(sim)]) {
				expect(response.json.errcode).toBe(40164);
				expect(response.json.errmsg).toMatch(/^invalid ip 127\.0\.0\.1 ipv6 ::ffff:127\.0\.0\.1, not in whitelist rid: /);
			}
			expect(await tokenState(sim, valid)).toBe(40164);
		} finally {
			sim.setAllowedIps(['127.0.0.1']);
		}
		expect(await tokenState(sim, valid)).toBe(0);
	});

	it('checks the access_token of business APIs: 41001, 40014, 42001', async () => {
		const missing = await call(sim, '/cgi-bin/getcallbackip');
		expect(missing.json.errcode).toBe(41001);
		expect(await tokenState(sim, 'not-a-token')).toBe(40014);
		const valid = await token(sim);
		const ips = await call(sim, '/cgi-bin/getcallbackip', { query: { access_token: valid } });
		expect(Array.isArray(ips.json.ip_list)).toBe(true);
		sim.expireAllTokens();
		expect(await tokenState(sim, valid)).toBe(42001);
		const renewed = await token(sim);
		expect(renewed).not.toBe(valid);
		sim.advanceTime(7201);
		expect(await tokenState(sim, renewed)).toBe(42001);
	});

	it('counts successful token fetches and reset() clears counters but keeps tokens', async () => {
		const kept = await token(sim);
		const before = sim.tokenFetches();
		await token(sim);
		await classicToken(sim);
		await stableToken(sim, { secret: 'wrong' });
		expect(sim.tokenFetches()).toBe(before + 2);
		sim.reset();
		expect(sim.tokenFetches()).toBe(0);
		expect(sim.requests).toHaveLength(0);
		expect(await tokenState(sim, kept)).toBe(0);
	});
});

describe('qrcode/create and showqrcode', () => {
	let sim: WeChatSimulator;
	let accessToken: string;
	beforeAll(async () => {
		sim = await startSimulator();
		accessToken = await token(sim);
	});
	afterAll(async () => {
		await sim.close();
	});

	it('creates the four kinds with the documented response shapes', async () => {
		const temporary = await createQr(sim, accessToken, {
			expire_seconds: 604800,
			action_name: 'QR_SCENE',
			action_info: { scene: { scene_id: 123 } },
		});
		expect(Object.keys(temporary)).toEqual(['ticket', 'expire_seconds', 'url']);
		expect(temporary.expire_seconds).toBe(604800);
		expect(temporary.url).toMatch(/^http:\/\/weixin\.qq\.com\/q\/[A-Za-z0-9]{22}$/);
		const ticket = temporary.ticket as string;
		expect(ticket).toMatch(/^[A-Za-z0-9+/]+=*$/);
		expect(ticket).toContain('+');
		expect(ticket).toContain('/');
		expect(ticket).toContain('=');

		const temporaryStr = await createQr(sim, accessToken, {
			expire_seconds: 60,
			action_name: 'QR_STR_SCENE',
			action_info: { scene: { scene_str: 'x'.repeat(64) } },
		});
		expect(temporaryStr.expire_seconds).toBe(60);

		const permanent = await createQr(sim, accessToken, {
			action_name: 'QR_LIMIT_SCENE',
			action_info: { scene: { scene_id: 100000 } },
		});
		expect(Object.keys(permanent)).toEqual(['ticket', 'url']);
		const permanentStr = await createQr(sim, accessToken, {
			expire_seconds: 30, // ignored for permanent codes
			action_name: 'QR_LIMIT_STR_SCENE',
			action_info: { scene: { scene_str: '中文场景' } },
		});
		expect(permanentStr.expire_seconds).toBeUndefined();

		const recorded = sim.tickets().find((t) => t.ticket === permanentStr.ticket);
		expect(recorded).toMatchObject({ actionName: 'QR_LIMIT_STR_SCENE', scene: '中文场景', url: permanentStr.url });
		expect(recorded?.expireSeconds).toBeUndefined();
	});

	it('defaults expire_seconds to 60 and caps it at 2592000', async () => {
		const omitted = await createQr(sim, accessToken, { action_name: 'QR_SCENE', action_info: { scene: { scene_id: 1 } } });
		expect(omitted.expire_seconds).toBe(60);
		const huge = await createQr(sim, accessToken, {
			expire_seconds: 99_999_999,
			action_name: 'QR_STR_SCENE',
			action_info: { scene: { scene_str: 'a' } },
		});
		expect(huge.expire_seconds).toBe(2592000);
	});

	it.each([
		['unknown action_name', { action_name: 'QR_FOO', action_info: { scene: { scene_id: 1 } } }, 40052],
		['missing action_name', { action_info: { scene: { scene_id: 1 } } }, 40052],
		['missing action_info', { action_name: 'QR_SCENE' }, 40053],
		['missing scene wrapper (string)', { action_name: 'QR_STR_SCENE', action_info: { scene_str: 'a' } }, 40053],
		['missing scene wrapper (permanent string)', { action_name: 'QR_LIMIT_STR_SCENE', action_info: { scene_str: 'a' } }, 40053],
		['scene_str for QR_SCENE', { action_name: 'QR_SCENE', action_info: { scene: { scene_str: 'a' } } }, 40053],
		['scene_id for QR_STR_SCENE', { action_name: 'QR_STR_SCENE', action_info: { scene: { scene_id: 1 } } }, 40053],
		['scene_id as string', { action_name: 'QR_SCENE', action_info: { scene: { scene_id: '1' } } }, 40053],
		['scene_id 0', { action_name: 'QR_SCENE', action_info: { scene: { scene_id: 0 } } }, 40053],
		['scene_id fractional', { action_name: 'QR_SCENE', action_info: { scene: { scene_id: 1.5 } } }, 40053],
		['scene_id over 32 bits', { action_name: 'QR_SCENE', action_info: { scene: { scene_id: 4294967296 } } }, 40053],
		['permanent scene_id over 100000', { action_name: 'QR_LIMIT_SCENE', action_info: { scene: { scene_id: 100001 } } }, 40053],
		['scene_str empty', { action_name: 'QR_LIMIT_STR_SCENE', action_info: { scene: { scene_str: '' } } }, 40053],
		['scene_str of 65 chars', { action_name: 'QR_STR_SCENE', action_info: { scene: { scene_str: 'x'.repeat(65) } } }, 40053],
		['expire_seconds 0', { expire_seconds: 0, action_name: 'QR_SCENE', action_info: { scene: { scene_id: 1 } } }, 40053],
		['expire_seconds string', { expire_seconds: '60', action_name: 'QR_SCENE', action_info: { scene: { scene_id: 1 } } }, 40053],
	])('rejects %s', async (_label, body, errcode) => {
		const json = await createQr(sim, accessToken, body);
		expect(json.errcode).toBe(errcode);
		expect(json.errmsg).toMatch(RID);
		expect(json.ticket).toBeUndefined();
	});

	it('rejects empty and malformed bodies', async () => {
		const query = { access_token: accessToken };
		expect((await call(sim, '/cgi-bin/qrcode/create', { method: 'POST', rawBody: '', query })).json.errcode).toBe(44002);
		expect((await call(sim, '/cgi-bin/qrcode/create', { rawBody: '{"action_name":', query })).json.errcode).toBe(47001);
	});

	it.each(['QR_SCENE', 'QR_LIMIT_SCENE'])('reproduces the scene-0 quirk when scene_id sits directly under action_info (%s)', async (actionName) => {
		const json = await createQr(sim, accessToken, {
			expire_seconds: 300,
			action_name: actionName,
			action_info: { scene_id: 42 },
		});
		expect(json.errcode).toBeUndefined();
		expect(sim.tickets().find((t) => t.ticket === json.ticket)?.scene).toBe(0);
	});

	it('serves a decodable JPEG whose QR content is the ticket url', async () => {
		const { ticket, url } = (await createQr(sim, accessToken, {
			expire_seconds: 3600,
			action_name: 'QR_STR_SCENE',
			action_info: { scene: { scene_str: 'order-1' } },
		})) as { ticket: string; url: string };
		const response = await fetch(`${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(ticket)}`);
		expect(response.status).toBe(200);
		expect(response.headers.get('content-type')).toBe('image/jpg');
		expect(response.headers.get('cache-control')).toBe('max-age=604800');
		const bytes = Buffer.from(await response.arrayBuffer());
		expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
		expect(bytes.includes(Buffer.from([0xff, 0xc0]))).toBe(true); // SOF0: baseline
		const image = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true });
		expect(image.width).toBe(430);
		const decoded = jsQR(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.byteLength), image.width, image.height);
		expect(decoded?.data).toBe(url);

		// Served from cache the second time: identical bytes.
		const again = await fetch(`${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(ticket)}`);
		expect(Buffer.from(await again.arrayBuffer()).equals(bytes)).toBe(true);
	});

	it('answers 404 for an un-encoded ticket, an unknown ticket and an expired ticket', async () => {
		const { ticket } = (await createQr(sim, accessToken, {
			expire_seconds: 60,
			action_name: 'QR_SCENE',
			action_info: { scene: { scene_id: 7 } },
		})) as { ticket: string };
		const raw = await fetch(`${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${ticket}`);
		expect(raw.status).toBe(404);
		expect(raw.headers.get('content-type')).toMatch(/^text\/html/);
		await raw.arrayBuffer();
		const unknown = await fetch(`${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent('gQAAAAAA+/==')}`);
		expect(unknown.status).toBe(404);
		await unknown.arrayBuffer();
		const encoded = `${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(ticket)}`;
		const fresh = await fetch(encoded);
		expect(fresh.status).toBe(200);
		await fresh.arrayBuffer();
		sim.advanceTime(61);
		const expired = await fetch(encoded);
		expect(expired.status).toBe(404);
		await expired.arrayBuffer();
	});

	it('applies api latency to api calls only, and imageLatencyMs to showqrcode', async () => {
		const { ticket } = (await createQr(sim, accessToken, {
			expire_seconds: 600,
			action_name: 'QR_SCENE',
			action_info: { scene: { scene_id: 8 } },
		})) as { ticket: string };
		const imageUrl = `${sim.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(ticket)}`;
		const timed = async (run: () => Promise<unknown>): Promise<number> => {
			const started = Date.now();
			await run();
			return Date.now() - started;
		};
		sim.setLatency(300);
		try {
			expect(await timed(() => fetch(imageUrl).then((r) => r.arrayBuffer()))).toBeLessThan(250);
			expect(await timed(() => call(sim, '/cgi-bin/getcallbackip', { query: { access_token: accessToken } }))).toBeGreaterThanOrEqual(290);
		} finally {
			sim.setLatency(0);
		}
		await withSimulator({ imageLatencyMs: 200 }, async (slowImages) => {
			const slowToken = await token(slowImages);
			const created = await createQr(slowImages, slowToken, { action_name: 'QR_LIMIT_SCENE', action_info: { scene: { scene_id: 1 } } });
			const slowUrl = `${slowImages.mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(created.ticket as string)}`;
			expect(await timed(() => fetch(slowUrl).then((r) => r.arrayBuffer()))).toBeGreaterThanOrEqual(190);
		});
	});

	it('reset() forgets tickets but keeps tokens', async () => {
		await createQr(sim, accessToken, { action_name: 'QR_LIMIT_SCENE', action_info: { scene: { scene_id: 77 } } });
		expect(sim.tickets().length).toBeGreaterThan(0);
		sim.reset();
		expect(sim.tickets()).toEqual([]);
		expect(await tokenState(sim, accessToken)).toBe(0);
	});
});

describe('short links', () => {
	let sim: WeChatSimulator;
	beforeAll(async () => {
		sim = await startSimulator({ now: fixedClock });
	});
	afterAll(async () => {
		await sim.close();
	});

	// Tests jump the clock by days, so every call asks stable_token for the current token (as a client would).
	const post = async (path: string, body: unknown): Promise<Json> =>
		(await call(sim, path, { body, query: { access_token: await token(sim) } })).json;

	it('long2short echoes the long url unchanged by default', async () => {
		const longUrl = 'https://example.com/a/very/long/path?x=1';
		expect(await post('/cgi-bin/shorturl', { action: 'long2short', long_url: longUrl })).toEqual({
			errcode: 0,
			errmsg: 'ok',
			short_url: longUrl,
		});
		expect((await post('/cgi-bin/shorturl', { action: 'short2long', long_url: longUrl })).errcode).toBe(47003);
		expect((await post('/cgi-bin/shorturl', { action: 'long2short', long_url: 'ftp://x' })).errcode).toBe(47003);
		expect((await post('/cgi-bin/shorturl', { action: 'long2short', long_url: 'weixin://wxpay/bizpayurl?pr=1' })).errcode).toBe(0);
	});

	it('long2short answers 45103 in retired mode', async () => {
		await withSimulator({ shortUrlMode: 'retired' }, async (retired) => {
			const retiredToken = await token(retired);
			const { json } = await call(retired, '/cgi-bin/shorturl', {
				body: { action: 'long2short', long_url: 'https://example.com' },
				query: { access_token: retiredToken },
			});
			expect(json.errcode).toBe(45103);
			expect(json.errmsg).toMatch(/^This API has been unsupported rid: /);
		});
	});

	it('shorten/gen stores data that shorten/fetch returns with the remaining seconds', async () => {
		const longData = JSON.stringify({ orderId: 'A-1', note: '扫码领券' });
		const gen = await post('/cgi-bin/shorten/gen', { long_data: longData, expire_seconds: 86400 });
		expect(gen.errcode).toBe(0);
		expect(gen.errmsg).toBe('ok');
		expect(gen.short_key).toMatch(/^[A-Za-z0-9]{15}$/);
		sim.advanceTime(100);
		const fetched = await post('/cgi-bin/shorten/fetch', { short_key: gen.short_key });
		expect(fetched).toEqual({
			errcode: 0,
			errmsg: 'ok',
			long_data: longData,
			create_time: Math.floor(NOON_BEIJING_MS / 1000),
			expire_seconds: 86300,
		});
		sim.advanceTime(86300);
		expect((await post('/cgi-bin/shorten/fetch', { short_key: gen.short_key })).errcode).toBe(9410012);
	});

	it('shorten/gen defaults expire_seconds to 2592000 and enforces the limits in UTF-8 bytes', async () => {
		const gen = await post('/cgi-bin/shorten/gen', { long_data: 'x' });
		expect((await post('/cgi-bin/shorten/fetch', { short_key: gen.short_key })).expire_seconds).toBe(2592000);
		expect((await post('/cgi-bin/shorten/gen', { long_data: 'x'.repeat(4096) })).errcode).toBe(0);
		expect((await post('/cgi-bin/shorten/gen', { long_data: 'x'.repeat(4097) })).errcode).toBe(9410010);
		// 1366 characters but 4098 bytes.
		expect((await post('/cgi-bin/shorten/gen', { long_data: '中'.repeat(1366) })).errcode).toBe(9410010);
		expect((await post('/cgi-bin/shorten/gen', { long_data: 'x', expire_seconds: 2592001 })).errcode).toBe(9410011);
		expect((await post('/cgi-bin/shorten/gen', { long_data: '' })).errcode).toBe(47003);
		expect((await post('/cgi-bin/shorten/gen', { long_data: 5 })).errcode).toBe(47003);
		expect((await post('/cgi-bin/shorten/gen', { expire_seconds: 60 })).errcode).toBe(47003);
		const query = { access_token: await token(sim) };
		expect((await call(sim, '/cgi-bin/shorten/gen', { method: 'POST', rawBody: '', query })).json.errcode).toBe(44002);
		expect((await call(sim, '/cgi-bin/shorten/gen', { rawBody: 'long_data=x', query })).json.errcode).toBe(47001);
	});

	it('shorten/fetch answers 9410012 for an unknown key', async () => {
		expect((await post('/cgi-bin/shorten/fetch', { short_key: 'AAAAAAAAAAAAAAA' })).errcode).toBe(9410012);
	});
});

describe('faults, latency, recording, quotas', () => {
	let sim: WeChatSimulator;
	let accessToken: string;
	beforeAll(async () => {
		sim = await startSimulator();
		accessToken = await token(sim);
	});
	afterAll(async () => {
		await sim.close();
	});

	const callbackIp = (signal?: AbortSignal) =>
		call(sim, '/cgi-bin/getcallbackip', { query: { access_token: accessToken }, signal });

	it('errcode fault with times applies to the next N calls only', async () => {
		sim.addFault({ path: '/cgi-bin/getcallbackip', errcode: -1, times: 2 });
		expect((await callbackIp()).json.errcode).toBe(-1);
		const second = await callbackIp();
		expect(second.status).toBe(200);
		expect(second.json.errcode).toBe(-1);
		expect(second.json.errmsg).toMatch(/^system error rid: /);
		expect((await callbackIp()).json.errcode).toBeUndefined();
	});

	it('httpStatus fault answers that status with an HTML body', async () => {
		sim.addFault({ path: '*', httpStatus: 502, times: 1 });
		const response = await fetch(`${sim.apiBaseUrl}/cgi-bin/getcallbackip?access_token=${accessToken}`);
		expect(response.status).toBe(502);
		expect(response.headers.get('content-type')).toMatch(/^text\/html/);
		expect(await response.text()).toContain('502 Bad Gateway');
	});

	it('drop fault resets the connection so fetch rejects', async () => {
		sim.addFault({ path: '/cgi-bin/getcallbackip', drop: true });
		try {
			await expect(callbackIp()).rejects.toThrow();
		} finally {
			sim.clearFaults();
		}
		expect((await callbackIp()).json.errcode).toBeUndefined();
		expect(sim.requestsTo('/cgi-bin/getcallbackip').some((r) => r.response.status === 0)).toBe(true);
	});

	it('hang fault never answers; the client timeout fires', async () => {
		sim.addFault({ path: '/cgi-bin/getcallbackip', hang: true, times: 1 });
		const started = Date.now();
		await expect(callbackIp(AbortSignal.timeout(300))).rejects.toThrow();
		expect(Date.now() - started).toBeGreaterThanOrEqual(250);
		expect((await callbackIp()).json.errcode).toBeUndefined();
	});

	it('delay fault adds latency and then answers normally', async () => {
		sim.addFault({ path: '/cgi-bin/getcallbackip', delayMs: 200, times: 1 });
		const started = Date.now();
		const { json } = await callbackIp();
		expect(Date.now() - started).toBeGreaterThanOrEqual(190);
		expect(Array.isArray(json.ip_list)).toBe(true);
	});

	it('probability faults are reproducible with a seed', async () => {
		const pattern = async (target: WeChatSimulator, targetToken: string): Promise<string> => {
			target.addFault({ path: '/cgi-bin/getcallbackip', errcode: 45011, probability: 0.5, seed: 42 });
			let hits = '';
			for (let i = 0; i < 40; i++) {
				const { json } = await call(target, '/cgi-bin/getcallbackip', { query: { access_token: targetToken } });
				hits += json.errcode === 45011 ? 'x' : '.';
			}
			target.clearFaults();
			return hits;
		};
		const first = await pattern(sim, accessToken);
		const second = await withSimulator({}, async (other) => pattern(other, await token(other)));
		expect(second).toBe(first);
		const faulted = first.split('').filter((c) => c === 'x').length;
		expect(faulted).toBeGreaterThan(5);
		expect(faulted).toBeLessThan(35);
	});

	it('injected latency does not serialize concurrent requests', async () => {
		sim.setLatency(100);
		try {
			const started = Date.now();
			const results = await Promise.all(Array.from({ length: 20 }, () => callbackIp()));
			const elapsed = Date.now() - started;
			expect(results.every((r) => Array.isArray(r.json.ip_list))).toBe(true);
			expect(elapsed).toBeGreaterThanOrEqual(95);
			expect(elapsed).toBeLessThan(1500);
		} finally {
			sim.setLatency(0);
		}
	});

	it('records every request with its response', async () => {
		sim.reset();
		await call(sim, '/cgi-bin/qrcode/create', {
			body: { action_name: 'QR_SCENE', action_info: { scene: { scene_id: 9 } } },
			query: { access_token: accessToken },
		});
		sim.addFault({ path: '/cgi-bin/getcallbackip', errcode: 40001, times: 1 });
		await callbackIp();
		await fetch(`${sim.apiBaseUrl}/nowhere`).then((r) => r.text());
		expect(sim.requests).toHaveLength(3);
		const [create, faulted, unknown] = sim.requests;
		expect(create).toMatchObject({
			method: 'POST',
			path: '/cgi-bin/qrcode/create',
			query: { access_token: accessToken },
			body: { action_name: 'QR_SCENE', action_info: { scene: { scene_id: 9 } } },
			remoteAddress: expect.stringMatching(/127\.0\.0\.1$/),
			response: { status: 200 },
		});
		expect(create.rawBody).toBe(JSON.stringify({ action_name: 'QR_SCENE', action_info: { scene: { scene_id: 9 } } }));
		expect(typeof create.at).toBe('number');
		expect(faulted.response).toEqual({ status: 200, errcode: 40001 });
		expect(unknown).toMatchObject({ method: 'GET', path: '/nowhere', response: { status: 404 } });
		expect(sim.requestsTo('/cgi-bin/qrcode/create')).toEqual([create]);
	});

	it('enforces per-API minute and daily quotas on the simulated clock', async () => {
		await withSimulator({ minuteQuota: 2, dailyQuota: 5, now: fixedClock }, async (limited) => {
			const limitedToken = await token(limited);
			const state = () => tokenState(limited, limitedToken);
			expect([await state(), await state(), await state()]).toEqual([0, 0, 45011]);
			limited.advanceTime(60);
			expect([await state(), await state()]).toEqual([0, 0]);
			limited.advanceTime(60);
			expect(await state()).toBe(45009);
			limited.advanceTime(86400);
			expect(await tokenState(limited, await token(limited))).toBe(0);
		});
	});

	it('close() ends hanging sockets', async () => {
		const doomed = await startSimulator();
		let closed = false;
		try {
			doomed.addFault({ path: '*', hang: true });
			const pending = fetch(`${doomed.apiBaseUrl}/cgi-bin/getcallbackip`);
			const outcome = pending.then(
				() => 'answered',
				() => 'rejected',
			);
			await new Promise((resolve) => setTimeout(resolve, 100));
			const started = Date.now();
			await doomed.close();
			closed = true;
			expect(await outcome).toBe('rejected');
			expect(Date.now() - started).toBeLessThan(1000);
		} finally {
			if (!closed) await doomed.close();
		}
	});

	it('answers 404 for unknown paths', async () => {
		const response = await fetch(`${sim.apiBaseUrl}/cgi-bin/does_not_exist?access_token=${accessToken}`);
		expect(response.status).toBe(404);
		await response.text();
	});
});
