import { describe, expect, it } from 'vitest';

import {
	actionNameFor,
	buildCreateTicketRequest,
	InvalidParameterError,
	normalizeTicket,
	qrImageUrl,
	validateLongData,
	validateLongUrl,
	validateShortKey,
} from '../nodes/WeChatQrCode/helpers/qrCodeRules';

function invalid(fn: () => unknown): InvalidParameterError {
	try {
		fn();
	} catch (error) {
		expect(error).toBeInstanceOf(InvalidParameterError);
		return error as InvalidParameterError;
	}
	throw new Error('expected an InvalidParameterError');
}

describe('action name', () => {
	it('picks the right action_name for each type and scene kind (string scenes are not QR_SCENE)', () => {
		expect(actionNameFor('temporary', 'id')).toBe('QR_SCENE');
		expect(actionNameFor('temporary', 'string')).toBe('QR_STR_SCENE');
		expect(actionNameFor('permanent', 'id')).toBe('QR_LIMIT_SCENE');
		expect(actionNameFor('permanent', 'string')).toBe('QR_LIMIT_STR_SCENE');
	});
});

describe('create ticket request', () => {
	it('nests the scene under action_info.scene and always sends expire_seconds for temporary codes', () => {
		expect(buildCreateTicketRequest({ qrType: 'temporary', sceneType: 'id', sceneId: 123, expireSeconds: 604800 }).body).toEqual({
			action_name: 'QR_SCENE',
			action_info: { scene: { scene_id: 123 } },
			expire_seconds: 604800,
		});
		expect(buildCreateTicketRequest({ qrType: 'temporary', sceneType: 'string', sceneStr: 'store_42', expireSeconds: 60 }).body).toEqual({
			action_name: 'QR_STR_SCENE',
			action_info: { scene: { scene_str: 'store_42' } },
			expire_seconds: 60,
		});
	});

	it('sends no expire_seconds for permanent codes and reports null expiry', () => {
		const request = buildCreateTicketRequest({ qrType: 'permanent', sceneType: 'string', sceneStr: '渠道-海报A', expireSeconds: 5 });
		expect(request.body).toEqual({ action_name: 'QR_LIMIT_STR_SCENE', action_info: { scene: { scene_str: '渠道-海报A' } } });
		expect(request.expireSeconds).toBeNull();
		expect(buildCreateTicketRequest({ qrType: 'permanent', sceneType: 'id', sceneId: 100000 }).body).toEqual({
			action_name: 'QR_LIMIT_SCENE',
			action_info: { scene: { scene_id: 100000 } },
		});
	});

	it('accepts the range edges and integer strings from expressions', () => {
		expect(buildCreateTicketRequest({ qrType: 'temporary', sceneType: 'id', sceneId: 4294967295, expireSeconds: 2592000 }).scene).toBe(4294967295);
		expect(buildCreateTicketRequest({ qrType: 'temporary', sceneType: 'id', sceneId: '17', expireSeconds: '60' }).body.expire_seconds).toBe(60);
		expect(buildCreateTicketRequest({ qrType: 'permanent', sceneType: 'string', sceneStr: 'x'.repeat(64) }).scene).toHaveLength(64);
	});

	it.each([
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 0, expireSeconds: 60 }, 'sceneId', '1 to 4294967295'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 4294967296, expireSeconds: 60 }, 'sceneId', '1 to 4294967295'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 1.5, expireSeconds: 60 }, 'sceneId', 'whole number'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 'abc', expireSeconds: 60 }, 'sceneId', 'whole number'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: Number.NaN, expireSeconds: 60 }, 'sceneId', 'whole number'],
		[{ qrType: 'permanent', sceneType: 'id', sceneId: 100001 }, 'sceneId', '1 to 100000'],
		[{ qrType: 'permanent', sceneType: 'id', sceneId: -3 }, 'sceneId', '1 to 100000'],
		[{ qrType: 'temporary', sceneType: 'string', sceneStr: '', expireSeconds: 60 }, 'sceneStr', '1 to 64 characters'],
		[{ qrType: 'temporary', sceneType: 'string', sceneStr: 'x'.repeat(65), expireSeconds: 60 }, 'sceneStr', '65 characters'],
		[{ qrType: 'permanent', sceneType: 'string', sceneStr: null }, 'sceneStr', '1 to 64 characters'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 5, expireSeconds: 59 }, 'expireSeconds', '60 to 2592000'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 5, expireSeconds: 2592001 }, 'expireSeconds', '60 to 2592000'],
		[{ qrType: 'temporary', sceneType: 'id', sceneId: 5, expireSeconds: 600.5 }, 'expireSeconds', 'whole number'],
		[{ qrType: 'forever', sceneType: 'id', sceneId: 5 }, 'qrType', 'temporary'],
		[{ qrType: 'temporary', sceneType: 'uuid', sceneId: 5, expireSeconds: 60 }, 'sceneType', '"id" or "string"'],
	])('refuses %j naming %s and the allowed range', (input, parameter, text) => {
		const error = invalid(() => buildCreateTicketRequest(input as never));
		expect(error.parameter).toBe(parameter);
		expect(error.message).toContain(parameter);
		expect(error.message).toContain(text);
	});
});

describe('tickets and image URLs', () => {
	const ticket = 'gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==';

	it('URL-encodes the ticket, which holds "+", "/" and "="', () => {
		expect(qrImageUrl('https://mp.weixin.qq.com', 'ab+c/d==')).toBe('https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=ab%2Bc%2Fd%3D%3D');
	});

	it('accepts a ticket as returned or pasted URL-encoded, and refuses garbage', () => {
		expect(normalizeTicket(` ${ticket} `)).toBe(ticket);
		expect(normalizeTicket(encodeURIComponent('ab+c/d=='))).toBe('ab+c/d==');
		expect(invalid(() => normalizeTicket('')).parameter).toBe('ticket');
		expect(invalid(() => normalizeTicket('not a ticket!')).parameter).toBe('ticket');
		expect(invalid(() => normalizeTicket(42)).parameter).toBe('ticket');
		expect(invalid(() => normalizeTicket('a'.repeat(1025))).parameter).toBe('ticket');
	});
});

describe('short links and keys', () => {
	it('accepts the URL schemes long2short accepted', () => {
		expect(validateLongUrl('https://example.com/a?b=c')).toBe('https://example.com/a?b=c');
		expect(validateLongUrl('weixin://wxpay/bizpayurl?pr=abc')).toBe('weixin://wxpay/bizpayurl?pr=abc');
		expect(invalid(() => validateLongUrl('ftp://example.com')).parameter).toBe('longUrl');
		expect(invalid(() => validateLongUrl('')).parameter).toBe('longUrl');
	});

	it('limits long data to 4096 UTF-8 bytes, not characters', () => {
		expect(validateLongData('a'.repeat(4096))).toHaveLength(4096);
		const chinese = '码'.repeat(1366); // 3 bytes each: 4098 bytes
		const error = invalid(() => validateLongData(chinese));
		expect(error.parameter).toBe('longData');
		expect(error.message).toContain('4098 bytes');
		expect(invalid(() => validateLongData('')).parameter).toBe('longData');
	});

	it('checks short keys', () => {
		expect(validateShortKey('iTqRJFSEqk9RvPk')).toBe('iTqRJFSEqk9RvPk');
		expect(invalid(() => validateShortKey('has space')).parameter).toBe('shortKey');
		expect(invalid(() => validateShortKey(undefined)).parameter).toBe('shortKey');
	});
});
