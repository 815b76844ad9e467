import { describeWeChatError, isWeChatError } from './weChatErrors';

/** The request shape this module needs; n8n's `helpers.httpRequest` satisfies it. */
export type JsonPost = (options: {
	method: 'POST';
	url: string;
	body: Record<string, unknown>;
	json: true;
}) => Promise<unknown>;

export interface StableTokenRequest {
	apiBaseUrl: string;
	appId: string;
	appSecret: string;
	/** The token WeChat just refused; a force refresh is considered only when WeChat hands it back again. */
	rejectedAccessToken?: string;
}

export class WeChatTokenError extends Error {
	constructor(
		readonly errcode: number,
		message: string,
		readonly description: string,
		/** WeChat's own errmsg (e.g. the caller IP for 40164). */
		readonly errmsg?: string,
	) {
		super(message);
		this.name = 'WeChatTokenError';
	}
}

/** WeChat allows a forced refresh 20 times a day and at most once per 30 s. */
export const FORCE_REFRESH_INTERVAL_MS = 30_000;

// Per process: several processes (queue mode) may each force once per interval, and WeChat itself ignores a
// force call within 30 s of the previous one, so the account's daily budget of 20 stays safe.
const lastForcedRefreshAt = new Map<string, number>();

export function normalizeBaseUrl(url: string): string {
	return url.trim().replace(/\/+$/, '');
}

async function requestStableToken(
	post: JsonPost,
	request: StableTokenRequest,
	forceRefresh: boolean,
): Promise<string> {
	const response = await post({
		method: 'POST',
		url: `${normalizeBaseUrl(request.apiBaseUrl)}/cgi-bin/stable_token`,
		body: {
			grant_type: 'client_credential',
			appid: request.appId.trim(),
			secret: request.appSecret.trim(),
			force_refresh: forceRefresh,
		},
		json: true,
	});
	if (isWeChatError(response)) {
		const { message, description } = describeWeChatError(response.errcode, response.errmsg);
		throw new WeChatTokenError(response.errcode, `Could not get a WeChat access token. ${message}. ${description}`, description, response.errmsg);
	}
	const token = (response as { access_token?: unknown } | null)?.access_token;
	if (typeof token !== 'string' || token === '') {
		throw new WeChatTokenError(0, 'Could not get a WeChat access token: the answer held no access_token', 'Check that the API base URL points to WeChat or to a relay that forwards cgi-bin/stable_token.');
	}
	return token;
}

/**
 * Gets the account's stable access token in normal mode, which never invalidates tokens held by the
 * customer's other systems (unlike cgi-bin/token). Forces a refresh only when WeChat hands back the very token
 * it just refused, and then at most once per 30 s per AppID.
 */
export async function fetchStableAccessToken(
	post: JsonPost,
	request: StableTokenRequest,
	now: () => number = Date.now,
): Promise<string> {
	const token = await requestStableToken(post, request, false);
	if (!request.rejectedAccessToken || token !== request.rejectedAccessToken) return token;

	const appId = request.appId.trim();
	const last = lastForcedRefreshAt.get(appId);
	if (last !== undefined && now() - last < FORCE_REFRESH_INTERVAL_MS) return token;
	lastForcedRefreshAt.set(appId, now());
	return await requestStableToken(post, request, true);
}
