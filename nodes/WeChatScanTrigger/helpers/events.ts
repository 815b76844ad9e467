/**
 * Scan-related WeChat events (protocol notes §5.2, §5.3): classification, scene extraction, scene
 * filters, the trigger's output item and retry de-duplication. Plain functions with no n8n dependency.
 */

/** A WeChat push as parsed from XML: element names as sent, every value a string. */
export type WeChatMessage = Record<string, string>;

export type ScanEventKind = 'subscribeScene' | 'scan' | 'subscribe' | 'unsubscribe';

const SCENE_PREFIX = 'qrscene_';
const MAX_SCENE_ID = 4294967295;
const CANONICAL_UINT_PATTERN = /^(?:0|[1-9]\d{0,9})$/;
const DIGITS_PATTERN = /^\d+$/;

/**
 * The scan-trigger kind of a push, or null for anything else (LOCATION, CLICK, user messages...).
 * `Event` casing is mixed (`subscribe` vs `SCAN`), so it is compared case-insensitively.
 */
export function classifyEvent(message: WeChatMessage): ScanEventKind | null {
	if (message.MsgType === undefined || message.MsgType.toLowerCase() !== 'event') return null;
	switch (message.Event === undefined ? '' : message.Event.toLowerCase()) {
		case 'subscribe':
			return message.EventKey !== undefined && message.EventKey.startsWith(SCENE_PREFIX) ? 'subscribeScene' : 'subscribe';
		case 'scan':
			return 'scan';
		case 'unsubscribe':
			return 'unsubscribe';
		default:
			return null;
	}
}

/**
 * §5.2: `subscribe` carries `qrscene_<scene>`, `SCAN` the bare scene; nothing else has a scene
 * (a plain follow may send an empty EventKey).
 */
export function sceneFromEventKey(event: string | undefined, eventKey: string | undefined): string | null {
	if (event === undefined || eventKey === undefined) return null;
	const kind = event.toLowerCase();
	if (kind === 'subscribe') return eventKey.startsWith(SCENE_PREFIX) ? eventKey.slice(SCENE_PREFIX.length) : null;
	return kind === 'scan' ? eventKey : null;
}

/**
 * The numeric scene_id when the scene is one: WeChat echoes scene_id as a plain decimal, so only
 * canonical non-negative integers up to 2^32-1 count. "007" is a scene_str (WeChat would send "7").
 */
export function sceneIdFromScene(scene: string | null): number | null {
	if (scene === null || !CANONICAL_UINT_PATTERN.test(scene)) return null;
	const id = Number(scene);
	return id <= MAX_SCENE_ID ? id : null;
}

/**
 * Scene filters as typed by a user: comma- or newline-separated, trimmed, blanks dropped.
 * `store_*` is a prefix filter.
 */
export function parseSceneFilters(text: string): string[] {
	return text
		.split(/[,\n\r]/)
		.map((filter) => filter.trim())
		.filter((filter) => filter !== '');
}

/**
 * No filters: everything passes, including pushes without a scene (plain follows, unfollows).
 * Otherwise the scene must equal a filter, or start with a filter's text before a trailing `*`.
 */
export function matchesSceneFilter(scene: string | null, filters: string[]): boolean {
	if (filters.length === 0) return true;
	if (scene === null) return false;
	for (const filter of filters) {
		if (filter.endsWith('*') ? scene.startsWith(filter.slice(0, -1)) : scene === filter) return true;
	}
	return false;
}

export interface ScanEventOutput {
	/** `Event` as sent (`subscribe`, `SCAN`, ...). */
	event: string;
	/** A follow, with or without a QR scene. */
	isNewFollower: boolean;
	/** FromUserName: the user's OpenID for this account. */
	openId: string;
	/** ToUserName: the account's original ID (`gh_...`). */
	accountId: string;
	/** Without the `qrscene_` prefix; null when the push has no scene. */
	scene: string | null;
	sceneId: number | null;
	ticket: string | null;
	/** Unix seconds; null when CreateTime is missing or not an integer. */
	createTime: number | null;
	/** Every field as received (the same object, not a copy). */
	message: WeChatMessage;
}

export function toScanEventOutput(message: WeChatMessage): ScanEventOutput {
	const event = message.Event === undefined ? '' : message.Event;
	const scene = sceneFromEventKey(message.Event, message.EventKey);
	const createTime = message.CreateTime;
	return {
		event,
		isNewFollower: event.toLowerCase() === 'subscribe',
		openId: message.FromUserName === undefined ? '' : message.FromUserName,
		accountId: message.ToUserName === undefined ? '' : message.ToUserName,
		scene,
		sceneId: sceneIdFromScene(scene),
		ticket: message.Ticket === undefined || message.Ticket === '' ? null : message.Ticket,
		createTime: createTime !== undefined && DIGITS_PATTERN.test(createTime) ? Number(createTime) : null,
		message,
	};
}

/**
 * WeChat re-sends a push up to 3 times after a 5 s timeout (§5.3): messages are identified by MsgId,
 * events by sender + CreateTime (+ Event, so a follow and a scan in the same second stay distinct).
 */
export function dedupeKey(message: WeChatMessage): string {
	if (message.MsgId !== undefined && message.MsgId !== '') return `msg:${message.MsgId}`;
	return `event:${message.FromUserName ?? ''}:${message.CreateTime ?? ''}:${message.Event ?? ''}`;
}

export interface RecentEventCacheOptions {
	/** Default 10,000; the oldest key is evicted beyond it. */
	maxEntries?: number;
	/** Default 60 s: WeChat's retries of one push arrive within about 20 s. */
	ttlMs?: number;
	/** Milliseconds; injectable for tests. */
	now?: () => number;
}

/** One recording of a key; the Map points to the latest, so an older one for the same key is stale. */
interface Recording {
	key: string;
	at: number;
}

/** Consumed recordings kept at the front of the queue before it is compacted (amortised O(1)). */
const COMPACT_AFTER = 1024;

/**
 * Bounded, timer-free memory of recently seen keys. Recordings are queued in insertion order with the
 * current time, so expired keys sit at the front and are evicted lazily: amortised O(1) per call.
 * The queue is an array with a moving head, not the Map's own insertion order: V8 keeps a deleted Map
 * entry's slot until the table is rebuilt, so reaching the oldest key of a Map used as a queue walks
 * every slot deleted since. At 10,000 keys that cost over 10 µs per call, and over 100 µs per event in
 * a sustained stream of pushes (measured, benchmark 3).
 */
export class RecentEventCache {
	private readonly latest = new Map<string, Recording>();

	private queue: Recording[] = [];

	private head = 0;

	private readonly maxEntries: number;

	private readonly ttlMs: number;

	private readonly now: () => number;

	constructor(options: RecentEventCacheOptions = {}) {
		this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
		this.ttlMs = options.ttlMs ?? 60_000;
		this.now = options.now ?? Date.now;
	}

	get size(): number {
		return this.latest.size;
	}

	/** True when `key` was already seen within the TTL; otherwise records it and returns false. */
	seen(key: string): boolean {
		const now = this.now();
		this.evictExpired(now);
		const previous = this.latest.get(key);
		if (previous !== undefined && now - previous.at < this.ttlMs) return true;
		// A key recorded again moves to the back: its older recording becomes stale.
		const recording = { key, at: now };
		this.latest.set(key, recording);
		this.queue.push(recording);
		if (this.latest.size > this.maxEntries) this.evictOldest();
		this.compact();
		return false;
	}

	/** Whether nothing is remembered within the TTL any more. */
	isEmpty(): boolean {
		this.evictExpired(this.now());
		return this.latest.size === 0;
	}

	/** Forgets `key`, so that it counts as new again (its queued recording becomes stale). */
	forget(key: string): void {
		this.latest.delete(key);
	}

	private isCurrent(recording: Recording): boolean {
		return this.latest.get(recording.key) === recording;
	}

	private evictExpired(now: number): void {
		while (this.head < this.queue.length) {
			const recording = this.queue[this.head];
			if (this.isCurrent(recording)) {
				if (now - recording.at < this.ttlMs) return;
				this.latest.delete(recording.key);
			}
			this.head++;
		}
	}

	private evictOldest(): void {
		while (this.head < this.queue.length) {
			const recording = this.queue[this.head++];
			if (this.isCurrent(recording)) {
				this.latest.delete(recording.key);
				return;
			}
		}
	}

	private compact(): void {
		if (this.queue.length - this.head > 2 * this.maxEntries) {
			// Stale recordings only pile up after the clock went back; drop them so memory stays bounded.
			this.queue = this.queue.filter((recording, i) => i >= this.head && this.isCurrent(recording));
			this.head = 0;
		} else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.queue.length) {
			this.queue = this.queue.slice(this.head);
			this.head = 0;
		}
	}
}
