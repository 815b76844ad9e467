/** WeChat error bodies: always HTTP 200 + {errcode, errmsg}, errmsg ending in a varying request id. */
import { randomRid } from './random';

export interface WeChatErrorBody {
	errcode: number;
	errmsg: string;
}

/** errmsg texts as WeChat words them (observed or close to it); callers must match on errcode only. */
const ERROR_MESSAGES: Readonly<Record<number, string>> = {
	[-1]: 'system error',
	40001: 'invalid credential, access_token is invalid or not latest',
	40002: 'invalid grant_type',
	40013: 'invalid appid',
	40014: 'invalid access_token',
	40052: 'invalid action name',
	40053: 'invalid action info',
	40125: 'invalid appsecret',
	41001: 'access_token missing',
	41002: 'appid missing',
	41004: 'appsecret missing',
	42001: 'access_token expired',
	43002: 'require POST method',
	44002: 'empty post data',
	45001: 'qrcode count out of limit',
	45009: 'reach max api daily quota limit',
	45011: 'api minute-quota reach limit  mustslower  retry next minute',
	45103: 'This API has been unsupported',
	47001: 'data format error',
	47003: 'argument invalid!',
	48001: 'api unauthorized',
	89503: 'risky operation, please wait for the admin to confirm',
	9410010: 'invalid long data size',
	9410011: 'invalid expire seconds',
	9410012: 'short key not found or expired',
};

export function wechatError(errcode: number, message?: string): WeChatErrorBody {
	const text = message ?? ERROR_MESSAGES[errcode] ?? 'system error';
	return { errcode, errmsg: `${text} rid: ${randomRid()}` };
}

/** 40164 names the caller's IPv4 address and its IPv4-mapped IPv6 form (protocol reference §7). */
export function ipNotWhitelisted(remoteAddress: string): WeChatErrorBody {
	const ipv4 = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
	const ipv6 = ipv4.includes(':') ? ipv4 : `::ffff:${ipv4}`;
	return wechatError(40164, `invalid ip ${ipv4} ipv6 ${ipv6}, not in whitelist`);
}
