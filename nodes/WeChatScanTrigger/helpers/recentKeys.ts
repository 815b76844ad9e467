/**
 * A bounded, timer-free memory of recently seen keys, each with the value recorded first. The trigger keeps
 * two: event keys (WeChat's re-sends) and the signed queries pushes came with (replays). No n8n dependency.
 */

export interface RecentKeysOptions {
	/** Default 10,000; the oldest key is evicted beyond it. */
	maxEntries?: number;
	/** Default 60 s: WeChat's retries of one push arrive within about 20 s. `retainAtLeast` raises it. */
	ttlMs?: number;
	/** Milliseconds; injectable for tests. */
	now?: () => number;
}

/** One recording of a key; the Map points to the latest, so an older one for the same key is stale. */
interface Recording<Value> {
	key: string;
	at: number;
	value: Value;
}

/** Consumed recordings kept at the front of the queue before it is compacted (amortised O(1)). */
const COMPACT_AFTER = 1024;

/**
 * Recordings are queued in insertion order with the current time, so expired keys sit at the front and are
 * evicted lazily: amortised O(1) per call. The queue is an array with a moving head, not the Map's own
 * insertion order: V8 keeps a deleted Map entry's slot until the table is rebuilt, so reaching the oldest
 * key of a Map used as a queue walks every slot deleted since. At 10,000 keys that cost over 10 µs per
 * call, and over 100 µs per event in a sustained stream of pushes (measured, benchmark 3).
 */
export class RecentKeys<Value> {
	private readonly latest = new Map<string, Recording<Value>>();

	private queue: Array<Recording<Value>> = [];

	private head = 0;

	private readonly maxEntries: number;

	private ttlMs: number;

	private readonly now: () => number;

	constructor(options: RecentKeysOptions = {}) {
		this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
		this.ttlMs = options.ttlMs ?? 60_000;
		this.now = options.now ?? Date.now;
	}

	get size(): number {
		return this.latest.size;
	}

	/**
	 * Keeps keys at least `ms` from now on. Only ever raised: two triggers sharing a memory with different
	 * timestamp windows both stay covered.
	 */
	retainAtLeast(ms: number): void {
		if (ms > this.ttlMs) this.ttlMs = ms;
	}

	/** The value recorded for `key` within the TTL; when there is none, records `value` and returns undefined. */
	recordFirst(key: string, value: Value): Value | undefined {
		const now = this.now();
		this.evictExpired(now);
		const previous = this.latest.get(key);
		if (previous !== undefined && now - previous.at < this.ttlMs) return previous.value;
		// A key recorded again moves to the back: its older recording becomes stale.
		const recording = { key, at: now, value };
		this.latest.set(key, recording);
		this.queue.push(recording);
		if (this.latest.size > this.maxEntries) this.evictOldest();
		this.compact();
		return undefined;
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

	private isCurrent(recording: Recording<Value>): boolean {
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
