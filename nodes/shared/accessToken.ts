import { createHash } from 'node:crypto';

import { retryTiming } from './retryPolicy';
import { describeWeChatError, isWeChatError } from './weChatErrors';

/** The request shape this module needs; n8n's `helpers.httpRequest` satisfies it. */
export type JsonPost = (options: {
	method: 'POST';
	url: string;
	body: Record<string, unknown>;
	json: true;
	disableFollowRedirect: true;
	timeout: number;
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
		/** undefined when the answer held neither a token nor an errcode (not WeChat's answer at all). */
		readonly errcode: number | undefined,
		message: string,
		readonly description: string,
		/** WeChat's own errmsg (e.g. the caller IP for 40164). */
		readonly errmsg?: string,
	) {
		super(message);
		this.name = 'WeChatTokenError';
	}
}

/** WeChat allows a forced refresh at most once per 30 s (a sooner call does not refresh)… */
export const FORCE_REFRESH_INTERVAL_MS = 30_000;
/** …and 20 times a day per account; each one kills the stable token the account's other systems hold. */
export const FORCE_REFRESHES_PER_DAY = 20;

const BEIJING_OFFSET_MS = 8 * 3_600_000;
/** WeChat's daily quotas reset at midnight in Beijing (UTC+8). */
const beijingDay = (at: number): number => Math.floor((at + BEIJING_OFFSET_MS) / 86_400_000);

interface ForcedRefreshes {
	lastAt: number;
	day: number;
	count: number;
}

// Per process and AppID. A refused token that WeChat keeps handing back (a relay that mangles tokens, say)
// would otherwise force a refresh every 30 s all day; queue-mode processes each keep their own count.
const forcedRefreshes = new Map<string, ForcedRefreshes>();

/** Whether a forced refresh is allowed now; counts it when it is. */
function takeForcedRefresh(appId: string, at: number): boolean {
	const day = beijingDay(at);
	const used = forcedRefreshes.get(appId);
	if (used && at - used.lastAt < FORCE_REFRESH_INTERVAL_MS) return false;
	const count = used && used.day === day ? used.count : 0;
	if (count >= FORCE_REFRESHES_PER_DAY) return false;
	forcedRefreshes.set(appId, { lastAt: at, day, count: count + 1 });
	return true;
}

export function normalizeBaseUrl(url: string): string {
	return url.trim().replace(/\/+$/, '');
}

/**
 * Whether a stored access token was fetched for this AppID. An access token alone names its account, so a
 * token kept after the AppID was edited would go on creating codes on the old account while it lives.
 */
export function isTokenOfAppId(accessTokenAppId: unknown, appId: unknown): boolean {
	return typeof accessTokenAppId === 'string' && accessTokenAppId === String(appId ?? '').trim();
}

interface FetchedToken {
	token: string;
	/** WeChat's expires_in in seconds: how long this token has left, not always the full 7,200. */
	expiresIn: number;
}

async function requestStableToken(
	post: JsonPost,
	request: StableTokenRequest,
	forceRefresh: boolean,
): Promise<FetchedToken> {
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
		// A 307/308 would re-send the AppSecret to wherever the Location points.
		disableFollowRedirect: true,
		timeout: retryTiming.requestTimeoutMs,
	});
	if (isWeChatError(response)) {
		const { message, description } = describeWeChatError(response.errcode, response.errmsg);
		throw new WeChatTokenError(response.errcode, `Could not get a WeChat access token. ${message}. ${description}`, description, response.errmsg);
	}
	const { access_token: token, expires_in: expiresIn } = (response ?? {}) as { access_token?: unknown; expires_in?: unknown };
	if (typeof token !== 'string' || token === '') {
		throw new WeChatTokenError(undefined, 'Could not get a WeChat access token: the answer held no access_token', 'Check that the API base URL points to WeChat or to a relay that forwards cgi-bin/stable_token.');
	}
	return { token, expiresIn: typeof expiresIn === 'number' && Number.isFinite(expiresIn) ? expiresIn : 0 };
}

/** How long a fetched token is handed to later fetches in this process, at most. */
export const TOKEN_REUSE_MS = 60_000;
/** A token with less than this left is never reused: the next fetch asks WeChat, which may rotate it. */
const REUSE_MIN_REMAINING_MS = 300_000;

/** A token and when it expires (ms since the epoch; 0 when WeChat did not say). */
export interface StableAccessToken {
	token: string;
	expiresAt: number;
}

interface SharedFetch {
	/** While it is pending, concurrent fetches for the account wait for it instead of sending their own. */
	pending: Promise<StableAccessToken>;
	/** Set once it settled with a token. */
	fetched?: StableAccessToken;
	reusableUntil: number;
}

/**
 * n8n runs preAuthentication for every execution that read the credential before a token was saved, with
 * no lock: a wave of executions starting together (a queue-mode worker taking many jobs) would each fetch
 * one. Per process, fetches for the same account share one stable_token call, and a token fetched in the
 * last minute is handed to them too. Keyed by everything that decides the token, so an edited credential
 * fetches its own; the AppSecret only as a hash.
 */
const sharedFetches = new Map<string, SharedFetch>();

/** How many accounts' fetches this process holds (for diagnostics and tests). */
export function sharedFetchCount(): number {
	return sharedFetches.size;
}

/** Drops fetches that can no longer be handed out, so every AppSecret a process ever saw does not stay. */
function forgetExpiredFetches(at: number): void {
	for (const [key, fetch] of sharedFetches) {
		if (fetch.fetched !== undefined && at >= fetch.reusableUntil) sharedFetches.delete(key);
	}
}

function accountKey(request: StableTokenRequest): string {
	const secretHash = createHash('sha256').update(request.appSecret.trim()).digest('hex');
	return `${normalizeBaseUrl(request.apiBaseUrl)}\n${request.appId.trim()}\n${secretHash}`;
}

/**
 * Gets the account's stable access token in normal mode, which never invalidates tokens held by the
 * customer's other systems (unlike cgi-bin/token). Forces a refresh only when WeChat hands back the very token
 * it just refused, and then at most once per 30 s and 20 times per Beijing day per AppID. Shares fetches
 * within the process (see above).
 */
export async function fetchStableAccessToken(
	post: JsonPost,
	request: StableTokenRequest,
	now: () => number = Date.now,
): Promise<StableAccessToken> {
	const key = accountKey(request);
	forgetExpiredFetches(now());
	// A token fetched by another execution is good unless it is the very one WeChat just refused. A failed
	// fetch fails its waiters too: the same call now would fail the same way.
	for (let shared = sharedFetches.get(key); shared; ) {
		if (shared.fetched !== undefined) {
			if (now() < shared.reusableUntil && shared.fetched.token !== request.rejectedAccessToken) return shared.fetched;
			break;
		}
		const fetched = await shared.pending;
		if (fetched.token !== request.rejectedAccessToken) return fetched;
		// Another caller refused by the same token may have started the refetch meanwhile: join it.
		const next = sharedFetches.get(key);
		shared = next === shared ? undefined : next;
	}

	const pending = fetchForAccount(post, request, now).then(({ token, expiresIn }) => {
		const fetchedAt = now();
		fetch.fetched = { token, expiresAt: expiresIn > 0 ? fetchedAt + expiresIn * 1000 : 0 };
		fetch.reusableUntil = fetchedAt + Math.min(TOKEN_REUSE_MS, expiresIn * 1000 - REUSE_MIN_REMAINING_MS);
		return fetch.fetched;
	});
	const fetch: SharedFetch = { pending, reusableUntil: 0 };
	sharedFetches.set(key, fetch);
	pending.catch(() => {
		if (sharedFetches.get(key) === fetch) sharedFetches.delete(key);
	});
	return await pending;
}

async function fetchForAccount(post: JsonPost, request: StableTokenRequest, now: () => number): Promise<FetchedToken> {
	const fetched = await requestStableToken(post, request, false);
	if (!request.rejectedAccessToken || fetched.token !== request.rejectedAccessToken) return fetched;

	// Without a refresh the caller's replay meets the refusal again, and WeChat's errcode is reported.
	if (!takeForcedRefresh(request.appId.trim(), now())) return fetched;
	return await requestStableToken(post, request, true);
}
