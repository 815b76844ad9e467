/**
 * Per-process state of the trigger, kept out of the request path's allocations: one cipher per key set
 * (the AES key is derived once, not per push); per trigger node one retry memory, one list of deliveries
 * n8n has not answered yet, and the credential's fields, reused for a second (n8n reads a credential from
 * its database and decrypts it on every call); per Token the signed queries already accepted.
 */
import { WeChatCipher } from './crypto';
import { UnansweredDeliveries } from './deliveries';
import { RecentEventCache } from './events';
import { RecentKeys } from './recentKeys';

const MAX_CACHED = 256;

/** Signed queries kept per Token: a timestamp window of 300 s holds 600 s of pushes, 166 per second. */
const SIGNED_QUERIES_KEPT = 100_000;

const ciphers = new Map<string, WeChatCipher>();
const recentEvents = new Map<string, RecentEventCache>();
const unansweredDeliveries = new Map<string, UnansweredDeliveries>();
const signedQueries = new Map<string, RecentKeys>();

/**
 * The entry for `key`, created when missing. A bound keeps a long-running process from growing (key
 * rotations, deactivated workflows), but only an entry with nothing left in it (`isIdle`) is dropped: a
 * trigger's memory of recent events must survive however many other triggers the process serves.
 */
function remember<T>(map: Map<string, T>, key: string, create: () => T, isIdle: (value: T) => boolean = () => true): T {
	let value = map.get(key);
	if (value === undefined) {
		value = create();
		if (map.size >= MAX_CACHED) {
			for (const [oldKey, old] of map) {
				if (isIdle(old)) {
					map.delete(oldKey);
					break;
				}
			}
		}
		map.set(key, value);
	}
	return value;
}

/** Throws when a key is malformed (the message never contains the key). */
export function cipherFor(encodingAESKey: string, appId: string, previousEncodingAESKey = ''): WeChatCipher {
	return remember(ciphers, `${appId}\u0000${encodingAESKey}\u0000${previousEncodingAESKey}`, () => new WeChatCipher(encodingAESKey, appId, previousEncodingAESKey));
}

export function recentEventsFor(triggerId: string): RecentEventCache {
	return remember(recentEvents, triggerId, () => new RecentEventCache(), (events) => events.isEmpty());
}

/**
 * The signed queries accepted with `token`, by every trigger node of this process, kept at least
 * `retentionMs`: a push signed with one Token is valid at every trigger that uses it.
 */
export function signedQueriesFor(token: string, retentionMs: number): RecentKeys {
	const queries = remember(
		signedQueries,
		token,
		() => new RecentKeys({ maxEntries: SIGNED_QUERIES_KEPT }),
		(memory) => memory.isEmpty(),
	);
	queries.retainAtLeast(retentionMs);
	return queries;
}

export function unansweredDeliveriesFor(triggerId: string): UnansweredDeliveries {
	return remember(unansweredDeliveries, triggerId, () => new UnansweredDeliveries(), (deliveries) => deliveries.isEmpty());
}

/** The credential fields a push needs. */
export interface TriggerCredential {
	token: string;
	appId: string;
	encodingAESKey: string;
	previousEncodingAESKey: string;
}

/** How long a read of the credential serves later pushes: an edit in n8n applies within this time. */
export const CREDENTIAL_REUSE_MS = 1_000;

interface CredentialRead {
	reading: Promise<TriggerCredential>;
	startedAt: number;
}

const credentialReads = new Map<string, CredentialRead>();

/**
 * One read of the credential per trigger node per second, shared by the pushes of a burst. A failed read
 * is dropped at once, so the next push reads again.
 */
export function triggerCredential(key: string, read: () => Promise<TriggerCredential>): Promise<TriggerCredential> {
	const now = Date.now();
	const kept = credentialReads.get(key);
	if (kept && now - kept.startedAt >= CREDENTIAL_REUSE_MS) credentialReads.delete(key);
	return remember(credentialReads, key, () => {
		const entry: CredentialRead = { reading: read(), startedAt: now };
		entry.reading.catch(() => {
			if (credentialReads.get(key) === entry) credentialReads.delete(key);
		});
		return entry;
	}).reading;
}
