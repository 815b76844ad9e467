/**
 * A bounded, timer-free memory of recently seen keys, each with the number recorded first. The trigger keeps
 * two: event keys (WeChat's re-sends) and the signed queries pushes came with (replays). No n8n dependency.
 */
import { randomBytes } from 'node:crypto';

export interface RecentKeysOptions {
	/** Default 10,000; the oldest key is evicted beyond it. */
	maxEntries?: number;
	/** Default 60 s: WeChat's retries of one push arrive within about 20 s. `retainAtLeast` raises it. */
	ttlMs?: number;
	/** Milliseconds; injectable for tests. */
	now?: () => number;
}

const INITIAL_CAPACITY = 1024;
const EMPTY = -1;
const TWO_TO_32 = 0x1_0000_0000;

/** Random per process: nobody outside can choose keys that share a fingerprint. */
const [SEED_A, SEED_B] = ((seed: Buffer) => [seed.readUInt32LE(0), seed.readUInt32LE(4)])(randomBytes(8));

/**
 * A 53-bit fingerprint of `key`, exact in a double: two 32-bit multiplicative hashes over the UTF-16 code
 * units, mixed into each other at the end (the construction of the public-domain cyrb53).
 */
export function keyFingerprint(key: string): number {
	let a = SEED_A ^ 0xdeadbeef;
	let b = SEED_B ^ 0x41c6ce57;
	for (let i = 0; i < key.length; i++) {
		const unit = key.charCodeAt(i);
		a = Math.imul(a ^ unit, 0x9e3779b1);
		b = Math.imul(b ^ unit, 0x5f356495);
	}
	a = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
	b = Math.imul(b ^ (b >>> 16), 0x85ebca6b) ^ Math.imul(a ^ (a >>> 13), 0xc2b2ae35);
	return (b & 0x1fffff) * TWO_TO_32 + (a >>> 0);
}

/**
 * Keys are kept as fingerprints in typed arrays, never as strings in a Map: the signed-query memory holds
 * 100,000 keys for ten minutes, and every long-lived string and Map entry is copied and promoted by the
 * garbage collector. Through the trigger's handler that made each push several microseconds slower (measured,
 * BENCHMARKS.md). A key's fingerprint never changes, so a recorded key is always found again. Two keys that
 * share a fingerprint count as one: a new key then looks recorded (about 1 push in 10^11 with 100,000 kept),
 * and forgetting one forgets both.
 *
 * Recordings sit in a ring of parallel arrays in the order they were made, numbered by a sequence that only
 * grows. An open-addressing index (linear probing, at most half full) points each live fingerprint to its
 * ring slot. Expired recordings are at the front and leave lazily, so a call costs amortised O(1) and
 * allocates nothing. A recording that left the index (its key was forgotten or recorded again) is stale and
 * is skipped when it reaches the front. The ring doubles up to `maxEntries` recordings; then each new one
 * evicts the oldest.
 */
export class RecentKeys {
	private prints = new Float64Array(INITIAL_CAPACITY);

	private times = new Float64Array(INITIAL_CAPACITY);

	private values = new Float64Array(INITIAL_CAPACITY);

	/** 1 while the recording in a slot is in the index. */
	private live = new Uint8Array(INITIAL_CAPACITY);

	private mask = INITIAL_CAPACITY - 1;

	/** Ring slot per position, or EMPTY; twice the ring's size. */
	private index = new Int32Array(2 * INITIAL_CAPACITY).fill(EMPTY);

	private indexMask = 2 * INITIAL_CAPACITY - 1;

	/** Sequence number of the oldest recording in the ring, and of the next one. */
	private first = 0;

	private next = 0;

	private liveCount = 0;

	private readonly maxEntries: number;

	private ttlMs: number;

	private readonly now: () => number;

	constructor(options: RecentKeysOptions = {}) {
		this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
		this.ttlMs = options.ttlMs ?? 60_000;
		this.now = options.now ?? Date.now;
	}

	get size(): number {
		return this.liveCount;
	}

	/**
	 * Keeps keys at least `ms` from now on. Only ever raised: two triggers sharing a memory with different
	 * timestamp windows both stay covered.
	 */
	retainAtLeast(ms: number): void {
		if (ms > this.ttlMs) this.ttlMs = ms;
	}

	/** The value recorded for `key` within the TTL; when there is none, records `value` and returns undefined. */
	recordFirst(key: string, value = 0): number | undefined {
		const now = this.now();
		this.evictExpired(now);
		const print = keyFingerprint(key);
		const position = this.find(print);
		const slot = this.index[position];
		if (slot !== EMPTY) {
			if (now - this.times[slot] < this.ttlMs) return this.values[slot];
			this.unlink(position, slot);
		}
		if (this.next - this.first >= this.maxEntries) this.evictFirst();
		else if (this.next - this.first > this.mask) this.grow();
		const newSlot = this.next & this.mask;
		this.prints[newSlot] = print;
		this.times[newSlot] = now;
		this.values[newSlot] = value;
		this.live[newSlot] = 1;
		// Found again: evicting or growing may have moved the index's entries.
		this.index[this.find(print)] = newSlot;
		this.liveCount++;
		this.next++;
		return undefined;
	}

	/** Whether nothing is remembered within the TTL any more. */
	isEmpty(): boolean {
		this.evictExpired(this.now());
		return this.liveCount === 0;
	}

	/** Forgets `key`, so that it counts as new again (its recording becomes stale). */
	forget(key: string): void {
		const position = this.find(keyFingerprint(key));
		const slot = this.index[position];
		if (slot !== EMPTY) this.unlink(position, slot);
	}

	/** The index position holding `print`, or the empty position where it belongs. */
	private find(print: number): number {
		for (let position = (print >>> 0) & this.indexMask; ; position = (position + 1) & this.indexMask) {
			const slot = this.index[position];
			if (slot === EMPTY || this.prints[slot] === print) return position;
		}
	}

	/** Takes a live recording out of the index; later entries of its probe run shift back into the hole. */
	private unlink(position: number, slot: number): void {
		this.live[slot] = 0;
		this.liveCount--;
		const { index, indexMask } = this;
		let hole = position;
		for (let at = (hole + 1) & indexMask; index[at] !== EMPTY; at = (at + 1) & indexMask) {
			const home = (this.prints[index[at]] >>> 0) & indexMask;
			// An entry whose home lies after the hole (cyclically, up to `at`) is still reachable where it is.
			if (((at - home) & indexMask) >= ((at - hole) & indexMask)) {
				index[hole] = index[at];
				hole = at;
			}
		}
		index[hole] = EMPTY;
	}

	private evictExpired(now: number): void {
		while (this.first < this.next) {
			const slot = this.first & this.mask;
			// A clock that went back leaves younger recordings behind older ones: expiry stops at the first.
			if (this.live[slot] === 1 && now - this.times[slot] < this.ttlMs) return;
			this.evictFirst();
		}
	}

	private evictFirst(): void {
		const slot = this.first & this.mask;
		if (this.live[slot] === 1) this.unlink(this.find(this.prints[slot]), slot);
		this.first++;
	}

	private grow(): void {
		const capacity = (this.mask + 1) * 2;
		const mask = capacity - 1;
		const prints = new Float64Array(capacity);
		const times = new Float64Array(capacity);
		const values = new Float64Array(capacity);
		const live = new Uint8Array(capacity);
		for (let sequence = this.first; sequence < this.next; sequence++) {
			const from = sequence & this.mask;
			const to = sequence & mask;
			prints[to] = this.prints[from];
			times[to] = this.times[from];
			values[to] = this.values[from];
			live[to] = this.live[from];
		}
		this.prints = prints;
		this.times = times;
		this.values = values;
		this.live = live;
		this.mask = mask;
		this.index = new Int32Array(2 * capacity).fill(EMPTY);
		this.indexMask = 2 * capacity - 1;
		for (let sequence = this.first; sequence < this.next; sequence++) {
			const slot = sequence & mask;
			if (live[slot] === 1) this.index[this.find(prints[slot])] = slot;
		}
	}
}
