/**
 * Business API handlers (qrcode/create, showqrcode, shorturl, shorten/*, getcallbackip).
 * They run after the token, IP and quota checks and only deal with the body rules of protocol §2–§4.
 */
import { wechatError } from './errors';
import { makeTicket, randomBase62 } from './random';
import { renderQrJpeg } from './qrImage';
import type { TicketInfo } from './types';

/** What a handler answers; the server turns it into an HTTP response. */
export type Answer =
	| { kind: 'json'; body: object }
	| { kind: 'raw'; status: number; contentType: string; body: Buffer | string; headers?: Record<string, string> };

export type ParsedBody = { kind: 'empty' } | { kind: 'invalid' } | { kind: 'json'; value: unknown };

export interface ApiContext {
	method: string;
	query: Record<string, string>;
	body: ParsedBody;
	/** Simulated clock, ms. */
	now: number;
}

const QR_ACTIONS = new Set(['QR_SCENE', 'QR_STR_SCENE', 'QR_LIMIT_SCENE', 'QR_LIMIT_STR_SCENE']);
const MAX_TEMPORARY_SCENE_ID = 4_294_967_295;
const MAX_PERMANENT_SCENE_ID = 100_000;
const MAX_PERMANENT_CODES = 100_000;
const MAX_SCENE_STR_CHARS = 64;
const DEFAULT_QR_EXPIRE_SECONDS = 60; // current official doc (older text says 30)
const MAX_EXPIRE_SECONDS = 2_592_000;
const MAX_LONG_DATA_BYTES = 4096;
const SHORT_KEY_LENGTH = 15;
/** Bounded caches: benchmarks fetch hundreds of images, a long demo must not grow without limit. */
const MAX_CACHED_IMAGES = 1000;
const FAKE_CALLBACK_IPS = ['101.226.103.0/25', '101.226.62.0/26', '58.251.80.0/27', '183.3.234.0/26'];
const FAKE_API_DOMAIN_IPS = ['101.89.47.18', '101.91.34.103', '183.3.234.107'];

const json = (body: object): Answer => ({ kind: 'json', body });
const error = (errcode: number): Answer => json(wechatError(errcode));

function notFoundPage(): Answer {
	return {
		kind: 'raw',
		status: 404,
		contentType: 'text/html; charset=utf-8',
		body: '<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>',
	};
}

export function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type BodyCheck = { ok: true; fields: Record<string, unknown> } | { ok: false; answer: Answer };

/** Body of a POST JSON api: 44002 when empty, 47001 when not a JSON object. */
function jsonObjectBody(body: ParsedBody): BodyCheck {
	if (body.kind === 'empty') return { ok: false, answer: error(44002) };
	if (body.kind === 'invalid' || !isRecord(body.value)) return { ok: false, answer: error(47001) };
	return { ok: true, fields: body.value };
}

interface TicketRecord extends TicketInfo {
	/** ms; Infinity for permanent codes. */
	expiresAt: number;
}

interface ShortKeyRecord {
	longData: string;
	createdAt: number;
	expiresAt: number;
}

export class ApiState {
	private readonly ticketsByValue = new Map<string, TicketRecord>();
	/** Every permanent create counts toward the account's 100,000 (a client resend makes a second code here). */
	private permanentCount = 0;
	private readonly imageCache = new Map<string, Buffer>();
	private readonly shortKeys = new Map<string, ShortKeyRecord>();

	constructor(private readonly shortUrlMode: 'echo' | 'retired') {}

	/** Forget tickets, images and short keys (tokens live elsewhere and survive). */
	clear(): void {
		this.ticketsByValue.clear();
		this.permanentCount = 0;
		this.imageCache.clear();
		this.shortKeys.clear();
	}

	tickets(): TicketInfo[] {
		return [...this.ticketsByValue.values()].map(({ ticket, url, actionName, scene, expireSeconds, createdAt }) =>
			expireSeconds === undefined
				? { ticket, url, actionName, scene, createdAt }
				: { ticket, url, actionName, scene, expireSeconds, createdAt },
		);
	}

	qrcodeCreate(ctx: ApiContext): Answer {
		if (ctx.method !== 'POST') return error(43002);
		const checked = jsonObjectBody(ctx.body);
		if (!checked.ok) return checked.answer;
		const body = checked.fields;

		const actionName = body.action_name;
		if (typeof actionName !== 'string' || !QR_ACTIONS.has(actionName)) return error(40052);
		const permanent = actionName.startsWith('QR_LIMIT_');
		const stringScene = actionName.endsWith('_STR_SCENE');

		const info = body.action_info;
		if (!isRecord(info)) return error(40053);
		let scene: string | number;
		if (info.scene === undefined) {
			// Community-reported quirk: scene_id without the `scene` wrapper succeeds but creates scene 0.
			if (stringScene || info.scene_id === undefined) return error(40053);
			scene = 0;
		} else {
			if (!isRecord(info.scene)) return error(40053);
			if (stringScene) {
				const sceneStr = info.scene.scene_str;
				if (typeof sceneStr !== 'string') return error(40053);
				const chars = Array.from(sceneStr).length;
				if (chars < 1 || chars > MAX_SCENE_STR_CHARS) return error(40053);
				scene = sceneStr;
			} else {
				const sceneId = info.scene.scene_id;
				const max = permanent ? MAX_PERMANENT_SCENE_ID : MAX_TEMPORARY_SCENE_ID;
				if (typeof sceneId !== 'number' || !Number.isInteger(sceneId) || sceneId < 1 || sceneId > max) {
					return error(40053);
				}
				scene = sceneId;
			}
		}

		if (permanent) {
			if (this.permanentCount >= MAX_PERMANENT_CODES) return error(45001);
			this.permanentCount++;
			const record = this.newTicket(actionName, scene, undefined, ctx.now);
			return json({ ticket: record.ticket, url: record.url });
		}

		let expireSeconds = DEFAULT_QR_EXPIRE_SECONDS;
		const requested = body.expire_seconds;
		if (requested !== undefined) {
			if (typeof requested !== 'number' || !Number.isInteger(requested) || requested < 1) return error(40053);
			expireSeconds = Math.min(requested, MAX_EXPIRE_SECONDS);
		}
		const record = this.newTicket(actionName, scene, expireSeconds, ctx.now);
		return json({ ticket: record.ticket, expire_seconds: expireSeconds, url: record.url });
	}

	/** mp.weixin.qq.com/cgi-bin/showqrcode: no token; the query is form-decoded so a raw '+' breaks the lookup. */
	showQrcode(ctx: ApiContext): Answer {
		const ticket = ctx.query.ticket;
		const record = ticket === undefined ? undefined : this.ticketsByValue.get(ticket);
		if (!record || ctx.now >= record.expiresAt) return notFoundPage();
		let image = this.imageCache.get(record.ticket);
		if (!image) {
			image = renderQrJpeg(record.url);
			if (this.imageCache.size >= MAX_CACHED_IMAGES) {
				const oldest = this.imageCache.keys().next();
				if (!oldest.done) this.imageCache.delete(oldest.value);
			}
			this.imageCache.set(record.ticket, image);
		}
		return {
			kind: 'raw',
			status: 200,
			contentType: 'image/jpg', // sic: WeChat's documented, non-standard type
			body: image,
			headers: { 'Cache-control': 'max-age=604800' },
		};
	}

	/** long2short, retired since 2021-03-15: echoes long_url (official doc) or 45103 (recent reports). */
	shortUrl(ctx: ApiContext): Answer {
		if (ctx.method !== 'POST') return error(43002);
		const checked = jsonObjectBody(ctx.body);
		if (!checked.ok) return checked.answer;
		const body = checked.fields;
		if (this.shortUrlMode === 'retired') return error(45103);
		if (body.action !== 'long2short') return error(47003);
		const longUrl = body.long_url;
		if (typeof longUrl !== 'string' || !/^(https?:\/\/|weixin:\/\/wxpay)/.test(longUrl)) return error(47003);
		return json({ errcode: 0, errmsg: 'ok', short_url: longUrl });
	}

	shortenGen(ctx: ApiContext): Answer {
		if (ctx.method !== 'POST') return error(43002);
		const checked = jsonObjectBody(ctx.body);
		if (!checked.ok) return checked.answer;
		const body = checked.fields;
		const longData = body.long_data;
		if (typeof longData !== 'string' || longData.length === 0) return error(47003);
		if (Buffer.byteLength(longData, 'utf8') > MAX_LONG_DATA_BYTES) return error(9410010);
		let expireSeconds = MAX_EXPIRE_SECONDS;
		const requested = body.expire_seconds;
		if (requested !== undefined) {
			if (typeof requested !== 'number' || !Number.isInteger(requested)) return error(47003);
			if (requested > MAX_EXPIRE_SECONDS) return error(9410011);
			if (requested < 1) return error(47003);
			expireSeconds = requested;
		}
		let shortKey = randomBase62(SHORT_KEY_LENGTH);
		for (let attempt = 0; attempt < 4 && this.shortKeys.has(shortKey); attempt++) {
			shortKey = randomBase62(SHORT_KEY_LENGTH);
		}
		this.shortKeys.set(shortKey, { longData, createdAt: ctx.now, expiresAt: ctx.now + expireSeconds * 1000 });
		return json({ errcode: 0, errmsg: 'ok', short_key: shortKey });
	}

	shortenFetch(ctx: ApiContext): Answer {
		if (ctx.method !== 'POST') return error(43002);
		const checked = jsonObjectBody(ctx.body);
		if (!checked.ok) return checked.answer;
		const body = checked.fields;
		const shortKey = body.short_key;
		if (typeof shortKey !== 'string' || shortKey.length === 0) return error(47003);
		const record = this.shortKeys.get(shortKey);
		if (!record || ctx.now >= record.expiresAt) return error(9410012);
		return json({
			errcode: 0,
			errmsg: 'ok',
			long_data: record.longData,
			create_time: Math.floor(record.createdAt / 1000),
			expire_seconds: Math.floor((record.expiresAt - ctx.now) / 1000),
		});
	}

	callbackIps(): Answer {
		return json({ ip_list: FAKE_CALLBACK_IPS });
	}

	apiDomainIps(): Answer {
		return json({ ip_list: FAKE_API_DOMAIN_IPS });
	}

	private newTicket(actionName: string, scene: string | number, expireSeconds: number | undefined, now: number): TicketRecord {
		const url = `http://weixin.qq.com/q/${randomBase62(22)}`;
		const createdAtSeconds = Math.floor(now / 1000);
		let ticket = makeTicket(url, createdAtSeconds, expireSeconds ?? 0);
		for (let attempt = 0; attempt < 4 && this.ticketsByValue.has(ticket); attempt++) {
			ticket = makeTicket(url, createdAtSeconds, expireSeconds ?? 0);
		}
		const record: TicketRecord = {
			ticket,
			url,
			actionName,
			scene,
			expireSeconds,
			createdAt: now,
			expiresAt: expireSeconds === undefined ? Infinity : now + expireSeconds * 1000,
		};
		this.ticketsByValue.set(ticket, record);
		return record;
	}
}
