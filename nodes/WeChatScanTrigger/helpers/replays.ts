/**
 * Replays of signed pushes (protocol notes §5.2, §6). A push's signature stays valid for as long as its
 * timestamp is inside the trigger's window, so a push captured from the network or from a proxy's access
 * log (the query holds the signature) could be sent again for that long. Plain functions, no n8n dependency.
 */
import { keyFingerprint, type RecentKeys } from './recentKeys';

/** WeChat's own re-sends of a push arrive within about 20 s; they are recognised at least this long. */
const MIN_RETENTION_MS = 60_000;

/**
 * How long a push must be remembered so that a copy of it cannot pass the timestamp check unrecognised:
 * a push signed at T is accepted from T − tolerance to T + tolerance, so two deliveries of it can be up
 * to twice the tolerance apart (plus a second for the clock's rounding).
 */
export function replayRetentionMs(timestampToleranceSeconds: number): number {
	if (!(timestampToleranceSeconds > 0)) return MIN_RETENTION_MS;
	return Math.max(MIN_RETENTION_MS, (2 * timestampToleranceSeconds + 1) * 1000);
}

/** Where a signed query was first accepted: the trigger node and the event its body carried. */
export interface SignedQueryUse {
	triggerId: string;
	eventKey: string;
}

export interface SignedPush {
	timestamp: string;
	nonce: string;
	/** msg_signature covers an encrypted body; the plaintext `signature` covers only token, timestamp, nonce. */
	encrypted: boolean;
}

export type SignedQueryCheck = { ok: false; reason: string } | { ok: true; repeated: boolean };

/** The memory key of a push's signed query. */
export function signedQueryKey(push: SignedPush): string {
	return `${push.timestamp}:${push.nonce}`;
}

const TWO_TO_32 = 0x1_0000_0000;

/**
 * A use as the one number the memory keeps: 21 bits of the trigger node's fingerprint, then 32 of the
 * event's. Two uses that share a code count as the same; that can only make a push look like a copy of an
 * earlier one, which is answered and never run.
 */
export function signedQueryUseCode(use: SignedQueryUse): number {
	return (keyFingerprint(use.triggerId) % 0x20_0000) * TWO_TO_32 + (keyFingerprint(use.eventKey) % TWO_TO_32);
}

/**
 * Records the signed query of an authenticated push in `memory` (one per Token: every push signed with it).
 * A query already accepted may come again only as a copy of its push: to the same trigger, with the same
 * event (`repeated`; WeChat's re-send, or a replay). In plaintext mode a different body under a used query
 * is a forgery, since the signature does not cover the body; an encrypted body is covered by its own
 * msg_signature, so there two pushes that share a timestamp and nonce by chance are both accepted.
 */
export function checkSignedQuery(memory: RecentKeys, push: SignedPush, use: SignedQueryUse): SignedQueryCheck {
	const code = signedQueryUseCode(use);
	const first = memory.recordFirst(signedQueryKey(push), code);
	if (first === undefined) return { ok: true, repeated: false };
	if (Math.floor(first / TWO_TO_32) !== Math.floor(code / TWO_TO_32)) {
		return { ok: false, reason: 'This signed push was already delivered to another trigger' };
	}
	if (first === code) return { ok: true, repeated: true };
	if (!push.encrypted) return { ok: false, reason: 'This signature was already used for another push' };
	return { ok: true, repeated: false };
}
