/**
 * WeChat's rules for parametric QR codes and short keys, checked before calling WeChat so a bad item fails
 * with a message naming the parameter instead of a bare errcode.
 */

export type QrType = 'temporary' | 'permanent';
export type SceneType = 'id' | 'string';
export type ActionName = 'QR_SCENE' | 'QR_STR_SCENE' | 'QR_LIMIT_SCENE' | 'QR_LIMIT_STR_SCENE';

export const LIMITS = {
	temporarySceneId: { min: 1, max: 4294967295 },
	permanentSceneId: { min: 1, max: 100000 },
	sceneStrLength: { min: 1, max: 64 },
	ticketExpireSeconds: { min: 60, max: 2592000 },
	shortKeyExpireSeconds: { min: 1, max: 2592000 },
	longDataBytes: 4096,
} as const;

/** A parameter value WeChat would refuse; `parameter` is the node parameter's name. */
export class InvalidParameterError extends Error {
	constructor(
		readonly parameter: string,
		message: string,
	) {
		super(message);
		this.name = 'InvalidParameterError';
	}
}

export function actionNameFor(qrType: QrType, sceneType: SceneType): ActionName {
	if (qrType === 'permanent') return sceneType === 'id' ? 'QR_LIMIT_SCENE' : 'QR_LIMIT_STR_SCENE';
	return sceneType === 'id' ? 'QR_SCENE' : 'QR_STR_SCENE';
}

/** Accepts a number or a canonical integer string (expressions often yield strings) within [min, max]. */
export function integerInRange(parameter: string, value: unknown, min: number, max: number): number {
	const number =
		typeof value === 'number'
			? value
			: typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)
				? Number(value)
				: NaN;
	if (!Number.isInteger(number) || number < min || number > max) {
		throw new InvalidParameterError(
			parameter,
			`${parameter} must be a whole number from ${min} to ${max}; got ${JSON.stringify(value)}`,
		);
	}
	return number;
}

export interface CreateTicketInput {
	qrType: QrType;
	sceneType: SceneType;
	sceneId?: unknown;
	sceneStr?: unknown;
	expireSeconds?: unknown;
}

export interface CreateTicketBody {
	action_name: ActionName;
	action_info: { scene: { scene_id: number } | { scene_str: string } };
	expire_seconds?: number;
}

export interface ValidTicketRequest {
	actionName: ActionName;
	scene: number | string;
	/** null for permanent codes */
	expireSeconds: number | null;
	body: CreateTicketBody;
}

/** Validates a Create QR Ticket request and builds WeChat's body, with the mandatory `scene` wrapper. */
export function buildCreateTicketRequest(input: CreateTicketInput): ValidTicketRequest {
	if (input.qrType !== 'temporary' && input.qrType !== 'permanent') {
		throw new InvalidParameterError('qrType', `qrType must be "temporary" or "permanent"; got ${JSON.stringify(input.qrType)}`);
	}
	if (input.sceneType !== 'id' && input.sceneType !== 'string') {
		throw new InvalidParameterError('sceneType', `sceneType must be "id" or "string"; got ${JSON.stringify(input.sceneType)}`);
	}
	const actionName = actionNameFor(input.qrType, input.sceneType);

	let scene: number | string;
	if (input.sceneType === 'id') {
		const range = input.qrType === 'permanent' ? LIMITS.permanentSceneId : LIMITS.temporarySceneId;
		scene = integerInRange('sceneId', input.sceneId, range.min, range.max);
	} else {
		scene = sceneString(input.sceneStr);
	}

	const expireSeconds =
		input.qrType === 'temporary'
			? integerInRange('expireSeconds', input.expireSeconds, LIMITS.ticketExpireSeconds.min, LIMITS.ticketExpireSeconds.max)
			: null;

	const body: CreateTicketBody = {
		action_name: actionName,
		action_info: { scene: typeof scene === 'number' ? { scene_id: scene } : { scene_str: scene } },
	};
	// Always sent for temporary codes: WeChat's own default is 60 seconds.
	if (expireSeconds !== null) body.expire_seconds = expireSeconds;
	return { actionName, scene, expireSeconds, body };
}

function sceneString(value: unknown): string {
	const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
	const { min, max } = LIMITS.sceneStrLength;
	// WeChat counts characters; a code point outside the BMP is one character to a person, so count those.
	const length = typeof text === 'string' ? Array.from(text).length : 0;
	if (typeof text !== 'string' || length < min || length > max) {
		throw new InvalidParameterError(
			'sceneStr',
			`sceneStr must be ${min} to ${max} characters long; got ${typeof text === 'string' ? `${length} characters` : JSON.stringify(value)}`,
		);
	}
	return text;
}

/** Tickets are standard base64; one pasted URL-encoded (from an image URL) is decoded first. */
export function normalizeTicket(value: unknown): string {
	let ticket = typeof value === 'string' ? value.trim() : '';
	if (/%[0-9A-Fa-f]{2}/.test(ticket)) {
		try {
			ticket = decodeURIComponent(ticket);
		} catch {
			// Not valid percent-encoding: the charset check below reports it.
		}
	}
	if (!/^[A-Za-z0-9+/=_-]{1,1024}$/.test(ticket)) {
		throw new InvalidParameterError(
			'ticket',
			`ticket must be the ticket string returned by Create QR Ticket (base64, up to 1024 characters); got ${JSON.stringify(value)}`,
		);
	}
	return ticket;
}

/** The showqrcode URL; the ticket holds '+', '/' and '=', so it must be URL-encoded. */
export function qrImageUrl(mpBaseUrl: string, ticket: string): string {
	return `${mpBaseUrl}/cgi-bin/showqrcode?ticket=${encodeURIComponent(ticket)}`;
}

export function validateLongUrl(value: unknown): string {
	const url = typeof value === 'string' ? value.trim() : '';
	if (!/^(https?:\/\/\S+|weixin:\/\/wxpay\S*)$/i.test(url)) {
		throw new InvalidParameterError(
			'longUrl',
			`longUrl must start with http://, https:// or weixin://wxpay; got ${JSON.stringify(value)}`,
		);
	}
	return url;
}

export function validateLongData(value: unknown): string {
	const data = typeof value === 'string' ? value : value === undefined || value === null ? '' : JSON.stringify(value);
	const bytes = Buffer.byteLength(data, 'utf8');
	if (bytes === 0 || bytes > LIMITS.longDataBytes) {
		throw new InvalidParameterError(
			'longData',
			`longData must be 1 to ${LIMITS.longDataBytes} bytes of UTF-8 text; got ${bytes} bytes`,
		);
	}
	return data;
}

export function validateShortKey(value: unknown): string {
	const key = typeof value === 'string' ? value.trim() : '';
	if (!/^[A-Za-z0-9]{1,64}$/.test(key)) {
		throw new InvalidParameterError(
			'shortKey',
			`shortKey must be the key returned by Create Short Key (letters and digits, usually 15); got ${JSON.stringify(value)}`,
		);
	}
	return key;
}
