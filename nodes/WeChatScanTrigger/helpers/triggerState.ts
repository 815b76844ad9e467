/**
 * Per-process state of the trigger, kept out of the request path's allocations: one cipher per key set
 * (the AES key is derived once, not per push), one retry memory per trigger node, and the credential's
 * fields reused for a second (n8n reads a credential from its database and decrypts it on every call).
 */
import { WeChatCipher } from './crypto';
import { RecentEventCache } from './events';

const MAX_CACHED = 256;

const ciphers = new Map<string, WeChatCipher>();
const recentEvents = new Map<string, RecentEventCache>();

function remember<T>(map: Map<string, T>, key: string, create: () => T): T {
	let value = map.get(key);
	if (value === undefined) {
		value = create();
		// Credentials rarely change; a bound keeps a long-running process from growing on key rotations.
		if (map.size >= MAX_CACHED) map.delete(map.keys().next().value as string);
		map.set(key, value);
	}
	return value;
}

/** Throws when a key is malformed (the message never contains the key). */
export function cipherFor(encodingAESKey: string, appId: string, previousEncodingAESKey = ''): WeChatCipher {
	return remember(ciphers, `${appId}\u0000${encodingAESKey}\u0000${previousEncodingAESKey}`, () => new WeChatCipher(encodingAESKey, appId, previousEncodingAESKey));
}

export function recentEventsFor(triggerId: string): RecentEventCache {
	return remember(recentEvents, triggerId, () => new RecentEventCache());
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

const credentialReads = new Map<string, Promise<TriggerCredential>>();

/**
 * One read of the credential per trigger node per second, shared by the pushes of a burst. A failed read
 * is dropped at once, so the next push reads again.
 */
export function triggerCredential(key: string, read: () => Promise<TriggerCredential>): Promise<TriggerCredential> {
	const kept = credentialReads.get(key);
	if (kept) return kept;
	const reading = read();
	credentialReads.set(key, reading);
	const release = () => {
		if (credentialReads.get(key) === reading) credentialReads.delete(key);
	};
	setTimeout(release, CREDENTIAL_REUSE_MS).unref();
	reading.catch(release);
	return reading;
}
