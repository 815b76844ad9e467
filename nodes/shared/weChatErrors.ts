/**
 * WeChat API errors: WeChat answers HTTP 200 with `{"errcode":N,"errmsg":"..."}`, so every call is
 * checked here rather than by HTTP status. Match on `errcode`, never on `errmsg`, whose request id varies.
 */

export interface WeChatErrorBody {
	errcode: number;
	errmsg?: string;
}

/** errcodes that mean the access token is no longer accepted: refetch once and replay once. */
export const STALE_TOKEN_ERRCODES: ReadonlySet<number> = new Set([40001, 40014, 42001]);

export const SYSTEM_BUSY_ERRCODE = -1;
export const MINUTE_QUOTA_ERRCODE = 45011;
export const DAILY_QUOTA_ERRCODE = 45009;
export const API_RETIRED_ERRCODE = 45103;

export function isWeChatError(body: unknown): body is WeChatErrorBody {
	if (typeof body !== 'object' || body === null) return false;
	const errcode = (body as { errcode?: unknown }).errcode;
	return typeof errcode === 'number' && errcode !== 0;
}

export function isStaleTokenError(body: unknown): boolean {
	return isWeChatError(body) && STALE_TOKEN_ERRCODES.has(body.errcode);
}

interface ErrcodeInfo {
	meaning: string;
	hint: string;
}

const ERRCODES: Record<number, ErrcodeInfo> = {
	[-1]: { meaning: 'WeChat system busy', hint: 'A transient WeChat fault: retry after a short pause.' },
	40001: {
		meaning: 'Access token or AppSecret not accepted',
		hint: 'When fetching a token this means a wrong AppSecret; on an API call the token was superseded (e.g. another system called cgi-bin/token). Check the AppSecret in the credential.',
	},
	40002: { meaning: 'Invalid grant_type', hint: 'grant_type must be client_credential.' },
	40013: {
		meaning: 'Invalid AppID',
		hint: 'Check the AppID in the credential for typos, case errors and stray spaces (WeChat console: Settings and Development > Basic Configuration).',
	},
	40014: { meaning: 'Invalid access token', hint: 'The token was refetched once and still rejected; check the credential.' },
	40052: {
		meaning: 'Invalid action_name',
		hint: 'Use one of QR_SCENE, QR_STR_SCENE, QR_LIMIT_SCENE, QR_LIMIT_STR_SCENE.',
	},
	40053: {
		meaning: 'Invalid action_info',
		hint: 'The scene must be nested as action_info.scene.scene_id or scene_str; scene_str is at most 64 characters.',
	},
	40125: {
		meaning: 'Invalid AppSecret',
		hint: 'Check or reset the AppSecret (WeChat console: Settings and Development > Basic Configuration) and update the credential.',
	},
	40164: {
		meaning: 'Caller IP is not on the API IP allow-list',
		hint: "Add n8n's egress IP to the account's API IP whitelist (Settings and Development > Basic Configuration > IP whitelist), then wait a few minutes for it to apply.",
	},
	40243: { meaning: 'AppSecret frozen', hint: 'An administrator must unfreeze the AppSecret in the WeChat console.' },
	41001: { meaning: 'Missing access token', hint: 'The request carried no access token; check the credential.' },
	41002: { meaning: 'Missing AppID', hint: 'Fill in the AppID in the credential.' },
	41004: { meaning: 'Missing AppSecret', hint: 'Fill in the AppSecret in the credential.' },
	42001: { meaning: 'Access token expired', hint: 'The token was refetched once and still rejected; check the credential.' },
	43002: { meaning: 'POST required', hint: 'stable_token accepts POST with a JSON body only.' },
	44002: { meaning: 'Empty request body', hint: 'The request body must not be empty.' },
	45009: {
		meaning: 'Daily API quota reached',
		hint: 'Wait for the next day; an administrator can reset the quota with cgi-bin/clear_quota (10 times a month).',
	},
	45011: { meaning: 'Per-minute API quota reached', hint: 'Back off and retry in the next minute.' },
	45103: { meaning: 'This API is no longer supported', hint: 'WeChat has retired this API.' },
	47001: { meaning: 'Malformed request body', hint: 'The request body is not valid JSON.' },
	47003: { meaning: 'Missing or invalid argument', hint: 'A required argument is missing or has a wrong value.' },
	48001: {
		meaning: 'API unauthorized',
		hint: 'The account lacks this permission: parametric QR codes need a verified Service Account (or the WeChat test account), and the AppID must belong to that account.',
	},
	89501: { meaning: 'IP awaiting admin confirmation', hint: 'Ask the account administrator to confirm this IP in WeChat.' },
	89503: {
		meaning: 'Call needs administrator confirmation',
		hint: 'WeChat sent a confirmation request to the account administrator; retry after they approve it.',
	},
	89506: { meaning: 'Administrator rejected this IP (24 h block)', hint: 'Wait 24 hours or call from a different IP.' },
	89507: { meaning: 'Administrator rejected this IP (1 h block)', hint: 'Wait an hour or call from a different IP.' },
	9410010: { meaning: 'long_data is larger than 4 KB', hint: 'Keep the data to store at most 4096 bytes (UTF-8).' },
	9410011: { meaning: 'expire_seconds over the limit', hint: 'Short keys live at most 2592000 seconds (30 days).' },
	9410012: {
		meaning: 'Short key unknown, expired or from another account',
		hint: 'Check the short key; keys can only be resolved with a token of the account that created them.',
	},
};

/** The caller IP that WeChat names in a 40164 errmsg, e.g. `invalid ip 203.0.113.7 ipv6 ..., not in whitelist`. */
export function callerIpFromErrmsg(errmsg: string | undefined): string | undefined {
	return /invalid ip ([0-9a-fA-F:.]+)/.exec(errmsg ?? '')?.[1];
}

export interface WeChatErrorDescription {
	message: string;
	description: string;
}

/** A message and an actionable hint for a WeChat errcode. */
export function describeWeChatError(errcode: number, errmsg?: string): WeChatErrorDescription {
	const info = ERRCODES[errcode];
	const meaning = info?.meaning ?? 'WeChat API error';
	let hint = info?.hint ?? 'See the WeChat global return code list for this errcode.';
	if (errcode === 40164) {
		const ip = callerIpFromErrmsg(errmsg);
		if (ip) hint = `Add ${ip} (n8n's egress IP as WeChat sees it) to the account's API IP whitelist (Settings and Development > Basic Configuration > IP whitelist), then wait a few minutes for it to apply.`;
	}
	const said = errmsg ? ` WeChat said: "${redactAccessTokens(errmsg)}".` : '';
	return { message: `WeChat error ${errcode}: ${meaning}`, description: `${hint}${said}` };
}

/** Removes access tokens from text such as request URLs that end up in HTTP client errors. */
export function redactAccessTokens(text: string): string {
	return text.replace(/(access_token["']?\s*[=:]\s*["']?)[^&\s"',}]+/gi, '$1***');
}

/** Removes access tokens and the given secret values from a text before it reaches a log or an error. */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
	let redacted = redactAccessTokens(text);
	for (const secret of secrets) {
		// Very short values would blank out ordinary words; credentials are never that short.
		if (secret && secret.length >= 6) redacted = redacted.split(secret).join('***');
	}
	return redacted;
}
