/**
 * When a failed WeChat call may be sent again. A call is only repeated when that cannot create a second
 * permanent object: either WeChat certainly did not process it, or repeating it is harmless.
 */
import { DAILY_QUOTA_ERRCODE, MINUTE_QUOTA_ERRCODE, SYSTEM_BUSY_ERRCODE } from './weChatErrors';

/** Tunable so tests and benchmarks need not wait real minutes; production uses the defaults. */
export const retryTiming = {
	/** Attempts per call for transient faults (the first try included). */
	maxAttempts: 3,
	/** Backoff base: the n-th retry waits a random time in [0, base × 2^n) ("full jitter"). */
	backoffBaseMs: 400,
	/** How long the whole batch pauses after WeChat's per-minute quota (45011) before retrying. */
	minuteQuotaPauseMs: 60_000,
	/** Retries of one call after 45011, so a quota that never recovers cannot loop forever. */
	maxMinuteQuotaRetries: 3,
	/** Per-request timeout. */
	requestTimeoutMs: 30_000,
};

export type FailureKind =
	/** The request never reached WeChat (connection refused, DNS): always safe to send again. */
	| 'not-sent'
	/** WeChat may have processed it (reset, timeout, gateway 5xx): repeat only idempotent calls. */
	| 'maybe-processed'
	/** WeChat says "system busy" (-1) and did nothing. */
	| 'busy'
	| 'minute-quota'
	| 'daily-quota'
	| 'permanent';

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const MAYBE_PROCESSED_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNABORTED', 'EPIPE', 'ESOCKETTIMEDOUT', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

export interface FailureFacts {
	errcode?: number;
	/** Node/axios error code, e.g. ECONNRESET. */
	code?: string;
	httpStatus?: number;
	message?: string;
	/** Where a redirect pointed (the Location without its query string, which may hold the access token). */
	redirectTo?: string;
	/** A ready explanation for the user, when the failure is not WeChat's errcode (e.g. an answer without a token). */
	description?: string;
	/** It failed while fetching the access token, so the call itself was never sent. */
	beforeCall?: boolean;
}

export function classifyFailure(facts: FailureFacts): FailureKind {
	if (facts.errcode === SYSTEM_BUSY_ERRCODE) return 'busy';
	if (facts.errcode === MINUTE_QUOTA_ERRCODE) return 'minute-quota';
	if (facts.errcode === DAILY_QUOTA_ERRCODE) return 'daily-quota';
	if (facts.errcode !== undefined) return 'permanent';
	if (facts.code && NOT_SENT_CODES.has(facts.code)) return 'not-sent';
	if (facts.code && MAYBE_PROCESSED_CODES.has(facts.code)) return 'maybe-processed';
	if (facts.httpStatus !== undefined && facts.httpStatus >= 500) return 'maybe-processed';
	if (/socket hang up|timeout|closed unexpectedly/i.test(facts.message ?? '')) return 'maybe-processed';
	return 'permanent';
}

/** Whether a call that failed this way may be sent again (before counting attempts). */
export function isRetryable(kind: FailureKind, idempotent: boolean): boolean {
	return kind === 'not-sent' || kind === 'busy' || (kind === 'maybe-processed' && idempotent);
}

/** Full-jitter exponential backoff for the n-th retry (0-based). */
export function backoffDelayMs(retry: number, random: () => number = Math.random): number {
	return Math.floor(random() * retryTiming.backoffBaseMs * 2 ** retry);
}
