import { describe, expect, it } from 'vitest';

import {
	callerIpFromErrmsg,
	describeWeChatError,
	isStaleTokenError,
	isWeChatError,
	redactAccessTokens,
	redactSecrets,
} from '../nodes/shared/weChatErrors';

describe('WeChat errors', () => {
	it('treats only a non-zero errcode as an error (shorten/* succeed with errcode 0)', () => {
		expect(isWeChatError({ errcode: 0, errmsg: 'ok', short_key: 'x' })).toBe(false);
		expect(isWeChatError({ ticket: 't' })).toBe(false);
		expect(isWeChatError({ errcode: 45009, errmsg: 'reach max api daily quota limit' })).toBe(true);
		expect(isWeChatError(null)).toBe(false);
		expect(isWeChatError('errcode')).toBe(false);
	});

	it('recognises the stale-token errcodes', () => {
		for (const errcode of [40001, 40014, 42001]) expect(isStaleTokenError({ errcode })).toBe(true);
		expect(isStaleTokenError({ errcode: 40013 })).toBe(false);
	});

	it('names the caller IP to add to the allow-list for 40164', () => {
		const errmsg = 'invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6123abcd-1234abcd-5678ef01';
		expect(callerIpFromErrmsg(errmsg)).toBe('203.0.113.7');
		const { message, description } = describeWeChatError(40164, errmsg);
		expect(message).toBe('WeChat error 40164: Caller IP is not on the API IP allow-list');
		expect(description).toContain('Add 203.0.113.7');
		expect(description).toContain('whitelist');
	});

	it.each([
		[48001, /verified Service Account/],
		[45009, /next day/],
		[45011, /next minute/],
		[40013, /AppID/],
		[40125, /AppSecret/],
		[89503, /administrator/],
		[9410012, /short key/],
	])('gives an actionable hint for %i', (errcode, hint) => {
		const { message, description } = describeWeChatError(errcode, `some message rid: 1-2-3`);
		expect(message).toContain(String(errcode));
		expect(description).toMatch(hint);
	});

	it('still describes unknown errcodes', () => {
		expect(describeWeChatError(99999).message).toBe('WeChat error 99999: WeChat API error');
	});

	it('redacts access tokens in URLs, JSON and query strings', () => {
		const issued = ['78', 'aBcDeFgHiJkLmNoPqRsTuVwXyZ-0123456789'].join('_');
		expect(redactAccessTokens(`POST http://127.0.0.1/cgi-bin/qrcode/create?access_token=${issued}&x=1 failed`)).toBe(
			'POST http://127.0.0.1/cgi-bin/qrcode/create?access_token=***&x=1 failed',
		);
		expect(redactAccessTokens(`{"access_token":"${issued}","expires_in":7200}`)).not.toContain(issued);
		expect(redactAccessTokens(`access_token: ${issued}`)).not.toContain(issued);
	});

	it('redacts given secrets wherever they appear', () => {
		expect(redactSecrets('secret is s3cr3t-value!', ['s3cr3t-value', undefined, ''])).toBe('secret is ***!');
	});
});
