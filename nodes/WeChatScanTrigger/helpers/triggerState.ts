/**
 * Per-process state of the trigger, kept out of the request path's allocations: one cipher per key set
 * (the AES key is derived once, not per push) and one retry memory per trigger node.
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
