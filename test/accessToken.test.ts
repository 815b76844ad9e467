/**
 * fetchStableAccessToken on its own: how fetches for one account share a stable_token call within a
 * process. WeChat is a scripted `post` here, so each case controls exactly when and what it answers.
 */
import { describe, expect, it } from 'vitest';

import { fetchStableAccessToken, FORCE_REFRESH_INTERVAL_MS, FORCE_REFRESHES_PER_DAY, sharedFetchCount, TOKEN_REUSE_MS, WeChatTokenError, type JsonPost, type StableTokenRequest } from '../nodes/shared/accessToken';

interface Call {
	appid: unknown;
	forceRefresh: boolean;
	answer: (body: unknown) => void;
}

/** A stable_token endpoint that answers only when the test says so. */
function scriptedWeChat() {
	const calls: Call[] = [];
	const post: JsonPost = (options) =>
		new Promise((resolve) => {
			calls.push({ appid: options.body.appid, forceRefresh: options.body.force_refresh === true, answer: resolve });
		});
	/** Starts a fetch that must reach WeChat with one call, answers that call, and returns the fetch's token. */
	async function fetchAnswered(request: StableTokenRequest, answer: unknown, now?: () => number): Promise<string> {
		const before = calls.length;
		const fetching = fetchStableAccessToken(post, request, now);
		await settle();
		expect(calls).toHaveLength(before + 1);
		calls[before].answer(answer);
		return (await fetching).token;
	}
	return { calls, post, fetchAnswered };
}

/** Lets pending promise callbacks run, so fetches that were started reach `post`. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

let accounts = 0;
/** A fresh account per test: the sharing is per process, and tests must not see each other's tokens. */
function account(overrides: Partial<StableTokenRequest> = {}): StableTokenRequest {
	accounts++;
	return { apiBaseUrl: 'http://127.0.0.1:1', appId: `wxshared${accounts}`, appSecret: `secret-${accounts}`, ...overrides };
}

describe('fetchStableAccessToken: one stable_token call per account and process', () => {
	it('makes 20 concurrent fetches for one account share one call, and hands its token to all', async () => {
		const { calls, post } = scriptedWeChat();
		const request = account();
		const fetches = Array.from({ length: 20 }, () => fetchStableAccessToken(post, request));
		await settle();
		expect(calls).toHaveLength(1);
		calls[0].answer({ access_token: 'TOKEN-A', expires_in: 7200 });
		expect(new Set((await Promise.all(fetches)).map((fetched) => fetched.token))).toEqual(new Set(['TOKEN-A']));
		expect(calls).toHaveLength(1);
	});

	it('hands a token fetched in the last minute to later fetches, and asks WeChat again after that', async () => {
		const { calls, post, fetchAnswered } = scriptedWeChat();
		const request = account();
		let clock = 1_000_000;
		const now = () => clock;
		expect(await fetchAnswered(request, { access_token: 'TOKEN-A', expires_in: 7200 }, now)).toBe('TOKEN-A');

		clock += TOKEN_REUSE_MS - 1;
		expect((await fetchStableAccessToken(post, request, now)).token).toBe('TOKEN-A');
		expect(calls).toHaveLength(1);

		clock += 1;
		expect(await fetchAnswered(request, { access_token: 'TOKEN-A', expires_in: 7140 }, now)).toBe('TOKEN-A');
		expect(calls).toHaveLength(2);
	});

	it('tells when the token expires, from expires_in, also to a fetch the token is handed to', async () => {
		const { calls, post, fetchAnswered } = scriptedWeChat();
		const request = account();
		let clock = 5_000_000;
		const now = () => clock;
		await fetchAnswered(request, { access_token: 'TOKEN-A', expires_in: 7000 }, now);
		clock += 10_000;
		expect(await fetchStableAccessToken(post, request, now)).toEqual({ token: 'TOKEN-A', expiresAt: 5_000_000 + 7_000_000 });

		// Without expires_in the expiry is unknown (0).
		const fetching = fetchStableAccessToken(post, account(), now);
		await settle();
		calls[1].answer({ access_token: 'TOKEN-B' });
		expect(await fetching).toEqual({ token: 'TOKEN-B', expiresAt: 0 });
	});

	it('never reuses a token with less than five minutes left', async () => {
		const { calls, fetchAnswered } = scriptedWeChat();
		const request = account();
		expect(await fetchAnswered(request, { access_token: 'TOKEN-OLD', expires_in: 299 })).toBe('TOKEN-OLD');
		expect(await fetchAnswered(request, { access_token: 'TOKEN-NEW', expires_in: 7200 })).toBe('TOKEN-NEW');
		expect(calls).toHaveLength(2);
	});

	it('does not hand out the token WeChat just refused: it asks WeChat, and forces a refresh if WeChat returns it again', async () => {
		const { calls, post, fetchAnswered } = scriptedWeChat();
		const request = account();
		expect(await fetchAnswered(request, { access_token: 'TOKEN-A', expires_in: 7200 })).toBe('TOKEN-A');

		const refetch = fetchStableAccessToken(post, { ...request, rejectedAccessToken: 'TOKEN-A' });
		await settle();
		expect(calls.map((c) => c.forceRefresh)).toEqual([false, false]);
		calls[1].answer({ access_token: 'TOKEN-A', expires_in: 7000 });
		await settle();
		expect(calls.map((c) => c.forceRefresh)).toEqual([false, false, true]);
		calls[2].answer({ access_token: 'TOKEN-B', expires_in: 7200 });
		expect((await refetch).token).toBe('TOKEN-B');

		// Another execution that still holds TOKEN-A gets the refreshed token without a call.
		expect((await fetchStableAccessToken(post, { ...request, rejectedAccessToken: 'TOKEN-A' })).token).toBe('TOKEN-B');
		expect(calls).toHaveLength(3);
	});

	it('forces at most once per 30 s and 20 times per Beijing day when WeChat keeps handing back the token it refuses', async () => {
		// Normal mode answers with whatever token WeChat just refused; a forced refresh issues a new one.
		let refused = 'TOKEN-0';
		const forcedAt: number[] = [];
		let clock = Date.UTC(2026, 11, 2, 16, 0, 0); // 00:00 on 3 December in Beijing
		const post: JsonPost = async (options) => {
			if (options.body.force_refresh !== true) return { access_token: refused, expires_in: 7200 };
			forcedAt.push(clock);
			return { access_token: `TOKEN-${forcedAt.length}`, expires_in: 7200 };
		};
		const request = account();
		const refuseAndFetch = async () => {
			refused = (await fetchStableAccessToken(post, { ...request, rejectedAccessToken: refused }, () => clock)).token;
		};

		await refuseAndFetch();
		clock += FORCE_REFRESH_INTERVAL_MS - 1;
		await refuseAndFetch();
		expect(forcedAt).toHaveLength(1);

		for (let i = 0; i < 30; i++) {
			clock += FORCE_REFRESH_INTERVAL_MS;
			await refuseAndFetch();
		}
		expect(forcedAt).toHaveLength(FORCE_REFRESHES_PER_DAY);

		// 23:59 in Beijing is still the same day; midnight opens the next day's budget.
		clock = Date.UTC(2026, 11, 3, 15, 59, 0);
		await refuseAndFetch();
		expect(forcedAt).toHaveLength(FORCE_REFRESHES_PER_DAY);
		clock = Date.UTC(2026, 11, 3, 16, 0, 0);
		await refuseAndFetch();
		expect(forcedAt).toHaveLength(FORCE_REFRESHES_PER_DAY + 1);
		expect(refused).toBe(`TOKEN-${FORCE_REFRESHES_PER_DAY + 1}`);
	});

	it('shares a failure with the fetches that waited for it, then lets the next fetch try again', async () => {
		const { calls, post, fetchAnswered } = scriptedWeChat();
		const request = account();
		const fetches = Array.from({ length: 5 }, () => fetchStableAccessToken(post, request).then(() => null, (error: unknown) => error));
		await settle();
		calls[0].answer({ errcode: 40164, errmsg: 'invalid ip 203.0.113.7, not in whitelist' });
		const errors = await Promise.all(fetches);
		expect(calls).toHaveLength(1);
		for (const error of errors) {
			expect(error).toBeInstanceOf(WeChatTokenError);
			expect((error as WeChatTokenError).errcode).toBe(40164);
		}

		expect(await fetchAnswered(request, { access_token: 'TOKEN-A', expires_in: 7200 })).toBe('TOKEN-A');
		expect(calls).toHaveLength(2);
	});

	it('keeps accounts apart: another AppID, AppSecret or API base URL fetches its own token', async () => {
		const { calls, post } = scriptedWeChat();
		const request = account();
		const variants = [request, { ...request, appId: `${request.appId}x` }, { ...request, appSecret: 'edited-secret' }, { ...request, apiBaseUrl: 'http://127.0.0.1:2' }];
		const fetches = variants.map((variant) => fetchStableAccessToken(post, variant));
		await settle();
		expect(calls).toHaveLength(4);
		calls.forEach((call, i) => call.answer({ access_token: `TOKEN-${i}`, expires_in: 7200 }));
		expect((await Promise.all(fetches)).map((fetched) => fetched.token)).toEqual(['TOKEN-0', 'TOKEN-1', 'TOKEN-2', 'TOKEN-3']);
	});
});

describe('fetchStableAccessToken: callers refused the same token, and what stays in memory', () => {
	it('two executions refused the same token while another was fetching: both join one refetch and get the new token', async () => {
		const forceFlags: boolean[] = [];
		// WeChat keeps handing back T in normal mode; a forced refresh issues T2.
		const post: JsonPost = async (options) => {
			forceFlags.push(options.body.force_refresh === true);
			await new Promise((resolve) => setTimeout(resolve, 20));
			return { access_token: options.body.force_refresh === true ? 'T2' : 'T', expires_in: 7200 };
		};
		const request = { apiBaseUrl: 'http://127.0.0.1:1', appId: 'wxrace1', appSecret: 'secret-race' };
		const x = fetchStableAccessToken(post, request);
		const a = fetchStableAccessToken(post, { ...request, rejectedAccessToken: 'T' });
		const b = fetchStableAccessToken(post, { ...request, rejectedAccessToken: 'T' });
		const [, fromA, fromB] = await Promise.all([x, a, b]);
		expect([fromA.token, fromB.token]).toEqual(['T2', 'T2']);
		// X's fetch, then one refetch for A and B together, which forces the refresh.
		expect(forceFlags).toEqual([false, false, true]);
	});

	it('keeps nothing for an account once its token can no longer be handed out', async () => {
		// An hour ahead of the real clock, so the fetches of the tests above have expired too.
		let clock = Date.now() + 3_600_000;
		const now = () => clock;
		let calls = 0;
		const post: JsonPost = async () => ({ access_token: `T${++calls}`, expires_in: 7200 });
		const rotated = (i: number) => ({ apiBaseUrl: 'http://127.0.0.1:1', appId: 'wxgrowth', appSecret: `rotated-secret-${i}` });
		// 2,000 AppSecret rotations over the life of one process, each long past its minute of reuse.
		for (let i = 0; i < 2_000; i++) {
			await fetchStableAccessToken(post, rotated(i), now);
			clock += TOKEN_REUSE_MS + 1_000;
		}
		expect(sharedFetchCount()).toBeLessThanOrEqual(1);
		// Within its minute a token is still handed out without a call.
		clock -= 2_000;
		await fetchStableAccessToken(post, rotated(1_999), now);
		expect(calls).toBe(2_000);
	});
});
