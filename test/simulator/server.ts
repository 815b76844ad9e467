/**
 * HTTP plumbing of the simulator: one plain node:http server on 127.0.0.1 standing for both
 * api.weixin.qq.com and mp.weixin.qq.com. Per request: record → fault → latency → route checks
 * (credentials/token, IP allow-list, quota) → handler. Latency uses timers, never blocks other requests.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ApiState, isRecord } from './apis';
import type { Answer, ApiContext, ParsedBody } from './apis';
import { ipNotWhitelisted, wechatError } from './errors';
import { FaultSet } from './faults';
import { createPrng } from './random';
import { TokenStore, beijingDay } from './tokens';
import type { FaultRule, RecordedRequest, SimulatorOptions, TicketInfo, WeChatSimulator } from './types';

/** Fake, public test values (the AppSecret default lives under a lint-neutral name): never a real account. */
const DEFAULT_APP_ID = 'wx5imulat0r0000001';
const DEFAULT_APP_CREDENTIAL = 'simulator-app-secret-0123456789ab';
const DEFAULT_ALLOWED_IPS = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];
const MAX_BODY_BYTES = 1024 * 1024;
/** Keeps a long-running demo bounded; far above what any test or benchmark records. */
const MAX_RECORDED_REQUESTS = 50_000;

/** Token endpoints check credentials themselves; 'api' routes need a token; 'image' (showqrcode) needs nothing. */
type Route = { kind: 'stable_token' } | { kind: 'token' } | { kind: 'api' | 'image'; handle: (ctx: ApiContext) => Answer };

interface QuotaCounter {
	minute: number;
	minuteCount: number;
	day: number;
	dayCount: number;
}

interface IncomingCall {
	req: http.IncomingMessage;
	res: http.ServerResponse;
	record: RecordedRequest;
	route: Route | undefined;
	ctx: ApiContext;
	remoteAddress: string;
}

function parseBody(rawBody: string): { parsed: ParsedBody; recorded: unknown } {
	if (rawBody.trim() === '') return { parsed: { kind: 'empty' }, recorded: rawBody };
	try {
		const value: unknown = JSON.parse(rawBody);
		return { parsed: { kind: 'json', value }, recorded: value };
	} catch {
		return { parsed: { kind: 'invalid' }, recorded: rawBody };
	}
}

/** Form decoding like the real host (URLSearchParams: '+' becomes a space); first value wins. */
function parseQuery(search: string): Record<string, string> {
	const query: Record<string, string> = {};
	for (const [key, value] of new URLSearchParams(search)) {
		if (!(key in query)) query[key] = value;
	}
	return query;
}

function htmlStatusPage(status: number): string {
	const title = `${status} ${http.STATUS_CODES[status] ?? 'Error'}`;
	return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<WeChatSimulator> {
	const appId = options.appId ?? DEFAULT_APP_ID;
	const appSecret = options.appSecret ?? DEFAULT_APP_CREDENTIAL;
	const baseClock = options.now ?? Date.now;
	let clockOffsetMs = 0;
	const now = (): number => baseClock() + clockOffsetMs;

	let allowedIps = new Set(options.allowedIps ?? DEFAULT_ALLOWED_IPS);
	let apiLatencyMs = options.latencyMs ?? 0;
	const imageLatencyMs = options.imageLatencyMs ?? 0;
	const minuteQuota = options.minuteQuota ?? Infinity;
	const dailyQuota = options.dailyQuota ?? Infinity;

	const requests: RecordedRequest[] = [];
	const faults = new FaultSet(createPrng(options.seed ?? 1));
	const tokens = new TokenStore((options.tokenTtlSeconds ?? 7200) * 1000, now);
	const apis = new ApiState(options.shortUrlMode ?? 'echo');
	const quotas = new Map<string, QuotaCounter>();
	let tokenFetchCount = 0;

	const sockets = new Set<Socket>();
	const hanging = new Set<http.ServerResponse>();
	const timers = new Set<NodeJS.Timeout>();
	let closed = false;

	const routes = new Map<string, Route>([
		['/cgi-bin/stable_token', { kind: 'stable_token' }],
		['/cgi-bin/token', { kind: 'token' }],
		['/cgi-bin/qrcode/create', { kind: 'api', handle: (ctx) => apis.qrcodeCreate(ctx) }],
		['/cgi-bin/showqrcode', { kind: 'image', handle: (ctx) => apis.showQrcode(ctx) }],
		['/cgi-bin/shorturl', { kind: 'api', handle: (ctx) => apis.shortUrl(ctx) }],
		['/cgi-bin/shorten/gen', { kind: 'api', handle: (ctx) => apis.shortenGen(ctx) }],
		['/cgi-bin/shorten/fetch', { kind: 'api', handle: (ctx) => apis.shortenFetch(ctx) }],
		['/cgi-bin/getcallbackip', { kind: 'api', handle: () => apis.callbackIps() }],
		['/cgi-bin/get_api_domain_ip', { kind: 'api', handle: () => apis.apiDomainIps() }],
	]);

	function ipAllowed(address: string): boolean {
		if (allowedIps.has(address)) return true;
		// The same caller may appear as 1.2.3.4 or ::ffff:1.2.3.4 depending on the socket family.
		if (address.startsWith('::ffff:')) return allowedIps.has(address.slice(7));
		return allowedIps.has(`::ffff:${address}`);
	}

	/** Counts the call; 45009 / 45011 once the per-path day / minute budget is spent. */
	function quotaError(path: string, at: number): number {
		const minute = Math.floor(at / 60_000);
		const day = beijingDay(at);
		let counter = quotas.get(path);
		if (!counter) {
			counter = { minute, minuteCount: 0, day, dayCount: 0 };
			quotas.set(path, counter);
		}
		if (counter.minute !== minute) {
			counter.minute = minute;
			counter.minuteCount = 0;
		}
		if (counter.day !== day) {
			counter.day = day;
			counter.dayCount = 0;
		}
		counter.minuteCount++;
		counter.dayCount++;
		if (counter.dayCount > dailyQuota) return 45009;
		if (counter.minuteCount > minuteQuota) return 45011;
		return 0;
	}

	function stableToken(call: IncomingCall): Answer {
		const { ctx } = call;
		if (ctx.method !== 'POST') return { kind: 'json', body: wechatError(43002) };
		if (ctx.body.kind === 'empty') return { kind: 'json', body: wechatError(44002) };
		if (ctx.body.kind === 'invalid' || !isRecord(ctx.body.value)) return { kind: 'json', body: wechatError(47001) };
		const { grant_type: grantType, appid, secret, force_refresh: forceRefresh } = ctx.body.value;
		// Wrongly typed fields fail JSON decoding on WeChat's side before any semantic check.
		const badType =
			(grantType !== undefined && typeof grantType !== 'string') ||
			(appid !== undefined && typeof appid !== 'string') ||
			(secret !== undefined && typeof secret !== 'string') ||
			(forceRefresh !== undefined && typeof forceRefresh !== 'boolean');
		if (badType) return { kind: 'json', body: wechatError(47001) };
		const credentialError = checkCredentials(grantType, appid, secret, call);
		if (credentialError) return credentialError;
		const result = tokens.stable(forceRefresh === true);
		if (!result.ok) return { kind: 'json', body: wechatError(result.errcode) };
		tokenFetchCount++;
		return { kind: 'json', body: { access_token: result.token, expires_in: result.expiresIn } };
	}

	function classicToken(call: IncomingCall): Answer {
		const { grant_type: grantType, appid, secret } = call.ctx.query;
		const credentialError = checkCredentials(grantType, appid, secret, call);
		if (credentialError) return credentialError;
		const result = tokens.classic();
		tokenFetchCount++;
		return { kind: 'json', body: { access_token: result.token, expires_in: result.expiresIn } };
	}

	/** Shared by both token endpoints: grant_type, appid (before secret), then IP and quota. */
	function checkCredentials(grantType: unknown, appid: unknown, secret: unknown, call: IncomingCall): Answer | undefined {
		const fail = (errcode: number): Answer => ({ kind: 'json', body: wechatError(errcode) });
		if (grantType !== 'client_credential') return fail(40002);
		if (appid === undefined || appid === '') return fail(41002);
		if (appid !== appId) return fail(40013);
		if (secret === undefined || secret === '') return fail(41004);
		if (secret !== appSecret) return fail(40125);
		if (!ipAllowed(call.remoteAddress)) return { kind: 'json', body: ipNotWhitelisted(call.remoteAddress) };
		const quota = quotaError(call.record.path, call.ctx.now);
		return quota ? fail(quota) : undefined;
	}

	/** Token, IP and quota checks of every business API (not showqrcode). */
	function businessApi(call: IncomingCall, handler: (ctx: ApiContext) => Answer): Answer {
		const token = call.ctx.query.access_token;
		if (token === undefined || token === '') return { kind: 'json', body: wechatError(41001) };
		const tokenError = tokens.check(token);
		if (tokenError) return { kind: 'json', body: wechatError(tokenError) };
		if (!ipAllowed(call.remoteAddress)) return { kind: 'json', body: ipNotWhitelisted(call.remoteAddress) };
		const quota = quotaError(call.record.path, call.ctx.now);
		if (quota) return { kind: 'json', body: wechatError(quota) };
		return handler(call.ctx);
	}

	function send(call: IncomingCall, answer: Answer): void {
		const { res, record } = call;
		if (res.destroyed || res.writableEnded) return;
		if (answer.kind === 'json') {
			// WeChat escapes '/' in its JSON ("http:\/\/weixin.qq.com\/q\/..."); valid JSON either way.
			const text = JSON.stringify(answer.body).replace(/\//g, '\\/');
			const errcode = 'errcode' in answer.body ? answer.body.errcode : undefined;
			record.response = typeof errcode === 'number' ? { status: 200, errcode } : { status: 200 };
			res.writeHead(200, {
				'Content-Type': 'application/json; encoding=utf-8',
				'Content-Length': Buffer.byteLength(text),
			});
			res.end(text);
			return;
		}
		record.response = { status: answer.status };
		res.writeHead(answer.status, {
			'Content-Type': answer.contentType,
			'Content-Length': Buffer.byteLength(answer.body),
			...answer.headers,
		});
		res.end(answer.body);
	}

	function respond(call: IncomingCall, fault: FaultRule | undefined): void {
		if (closed || call.res.destroyed) return;
		if (fault?.drop) {
			call.req.socket.destroy();
			return;
		}
		if (fault?.hang) {
			hanging.add(call.res);
			call.res.once('close', () => hanging.delete(call.res));
			return;
		}
		if (fault?.httpStatus !== undefined) {
			send(call, { kind: 'raw', status: fault.httpStatus, contentType: 'text/html', body: htmlStatusPage(fault.httpStatus) });
			return;
		}
		if (fault?.errcode !== undefined) {
			send(call, { kind: 'json', body: wechatError(fault.errcode) });
			return;
		}
		const { route } = call;
		if (!route) {
			send(call, { kind: 'raw', status: 404, contentType: 'text/html', body: htmlStatusPage(404) });
			return;
		}
		switch (route.kind) {
			case 'stable_token':
				send(call, stableToken(call));
				return;
			case 'token':
				send(call, classicToken(call));
				return;
			case 'image':
				send(call, route.handle(call.ctx));
				return;
			case 'api':
				send(call, businessApi(call, route.handle));
				return;
		}
	}

	function handle(req: http.IncomingMessage, res: http.ServerResponse, rawBody: string): void {
		const arrivedAt = now();
		const target = req.url ?? '/';
		const queryStart = target.indexOf('?');
		const path = queryStart === -1 ? target : target.slice(0, queryStart);
		const query = parseQuery(queryStart === -1 ? '' : target.slice(queryStart + 1));
		const { parsed, recorded } = parseBody(rawBody);
		const method = req.method ?? 'GET';
		const remoteAddress = req.socket.remoteAddress ?? '';
		const record: RecordedRequest = {
			method,
			path,
			query,
			body: recorded,
			rawBody,
			remoteAddress,
			at: arrivedAt,
			response: { status: 0 },
		};
		requests.push(record);
		if (requests.length > MAX_RECORDED_REQUESTS * 1.1) requests.splice(0, requests.length - MAX_RECORDED_REQUESTS);

		const route = routes.get(path);
		const call: IncomingCall = { req, res, record, route, remoteAddress, ctx: { method, query, body: parsed, now: arrivedAt } };
		const fault = faults.take(path);
		const baseLatency = route?.kind === 'image' ? imageLatencyMs : apiLatencyMs;
		const delay = baseLatency + (fault?.delayMs ?? 0);
		if (delay <= 0) {
			respond(call, fault);
			return;
		}
		const timer = setTimeout(() => {
			timers.delete(timer);
			// The clock may have been advanced during the wait; WeChat judges at handling time.
			call.ctx.now = now();
			respond(call, fault);
		}, delay);
		timers.add(timer);
	}

	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		let size = 0;
		let tooLarge = false;
		req.on('data', (chunk: Buffer) => {
			if (tooLarge) return;
			size += chunk.length;
			if (size > MAX_BODY_BYTES) {
				tooLarge = true;
				res.writeHead(413, { 'Content-Type': 'text/html', Connection: 'close' });
				res.end(htmlStatusPage(413));
				return;
			}
			chunks.push(chunk);
		});
		req.on('end', () => {
			if (!tooLarge) handle(req, res, Buffer.concat(chunks).toString('utf8'));
		});
		// A client abort is normal here (timeouts, drops); nothing to report.
		req.on('error', () => undefined);
		res.on('error', () => undefined);
	});
	server.keepAliveTimeout = 5_000;
	server.on('connection', (socket: Socket) => {
		sockets.add(socket);
		socket.once('close', () => sockets.delete(socket));
	});
	server.on('clientError', (_err, socket) => socket.destroy());

	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(options.port ?? 0, '127.0.0.1', () => {
			server.off('error', reject);
			resolve();
		});
	});
	const { port } = server.address() as AddressInfo;
	const url = `http://127.0.0.1:${port}`;

	return {
		url,
		apiBaseUrl: url,
		mpBaseUrl: url,
		appId,
		appSecret,
		requests,
		requestsTo: (path: string) => requests.filter((r) => r.path === path),
		tokenFetches: () => tokenFetchCount,
		addFault: (rule: FaultRule) => faults.add(rule),
		clearFaults: () => faults.clear(),
		setLatency: (ms: number) => {
			apiLatencyMs = ms;
		},
		expireAllTokens: () => tokens.expireAll(),
		invalidateStableToken: () => tokens.forceRefreshByOtherSystem(),
		advanceTime: (seconds: number) => {
			clockOffsetMs += seconds * 1000;
		},
		setAllowedIps: (ips: string[]) => {
			allowedIps = new Set(ips);
		},
		issuedTokens: () => tokens.issued(),
		tickets: (): TicketInfo[] => apis.tickets(),
		reset: () => {
			requests.length = 0;
			faults.clear();
			quotas.clear();
			tokenFetchCount = 0;
			tokens.resetCounters();
			apis.clear();
		},
		close: async () => {
			if (closed) return;
			closed = true;
			for (const timer of timers) clearTimeout(timer);
			timers.clear();
			const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
			for (const res of hanging) res.socket?.destroy();
			hanging.clear();
			for (const socket of sockets) socket.destroy();
			sockets.clear();
			await stopped;
		},
	};
}
