/**
 * The WeChat account the trigger benchmarks sign pushes for, and the distinct subscribe events they send.
 */
import { randomBytes } from 'node:crypto';

import { buildScanPush, type BuiltScanPush, type PushMode } from '../../simulator/push';

export interface BenchAccount {
	appId: string;
	token: string;
	accountId: string;
	encodingAESKey: string;
}

/** A fixed Token and account id, and a fresh 43-character EncodingAESKey per run. */
export function benchAccount(appId: string, token = 'benchToken2026'): BenchAccount {
	return {
		appId,
		token,
		accountId: 'gh_0123456789ab',
		encodingAESKey: randomBytes(40).toString('base64').replace(/[^A-Za-z0-9]/g, '').padEnd(43, 'A').slice(0, 43),
	};
}

/**
 * Nonces counted up from a random start, distinct for every push this process signs. The trigger refuses a
 * plaintext push whose timestamp and nonce an accepted push already had (its signature does not cover the
 * body), and random 32-bit nonces meet by chance at benchmark rates: tens of thousands signed per second.
 */
let nextNonce = randomBytes(4).readUInt32BE(0) >>> 1;

/**
 * A subscribe to scene `store_<index % 500>` from a fresh OpenID (the push builder's default), so the
 * trigger's retry memory never takes it for a re-send; signed now unless `createTime` says otherwise.
 */
export function benchSubscribePush(account: BenchAccount, mode: PushMode, index: number, createTime?: number): BuiltScanPush {
	nextNonce = (nextNonce + 1) % 2 ** 32;
	return buildScanPush({
		token: account.token,
		appId: account.appId,
		encodingAESKey: account.encodingAESKey,
		mode,
		event: 'subscribe',
		scene: `store_${index % 500}`,
		accountId: account.accountId,
		createTime,
		nonce: String(nextNonce),
	});
}
