/** Random identifiers shaped like WeChat's, plus a seeded PRNG for reproducible fault injection. */
import { randomBytes } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TOKEN_ALPHABET = `${BASE62}_-`;

/** Uniform characters from `alphabet` (length <= 256) using rejection sampling over crypto bytes. */
function randomChars(length: number, alphabet: string): string {
	// Largest multiple of the alphabet size that fits in a byte, so `byte % size` stays uniform.
	const limit = 256 - (256 % alphabet.length);
	let out = '';
	// Each round keeps >= ~75% of bytes, so a handful of rounds always suffices; the cap keeps the loop bounded.
	for (let round = 0; round < 64 && out.length < length; round++) {
		for (const byte of randomBytes(length * 2)) {
			if (byte < limit) out += alphabet[byte % alphabet.length];
			if (out.length === length) break;
		}
	}
	return out;
}

export function randomBase62(length: number): string {
	return randomChars(length, BASE62);
}

/** 136 chars of [A-Za-z0-9_-], like WeChat's tokens ("<2 digits>_<random>"). */
export function randomAccessToken(): string {
	return `${10 + Math.floor(Math.random() * 90)}_${randomChars(133, TOKEN_ALPHABET)}`;
}

/** `xxxxxxxx-xxxxxxxx-xxxxxxxx` as at the end of WeChat's errmsg. */
export function randomRid(): string {
	const hex = randomBytes(12).toString('hex');
	return `${hex.slice(0, 8)}-${hex.slice(8, 16)}-${hex.slice(16, 24)}`;
}

/**
 * A ticket laid out like the official sample (decoded: 0x81 0x01, an id, tag 1 = url + NUL,
 * tag 2 = create time, tag 3 = expiry, all base64). Every ticket carries '+', '/' and '=' so that
 * a client which forgets encodeURIComponent fails against the simulator as it would against WeChat.
 */
export function makeTicket(url: string, createdAtSeconds: number, expireSeconds: number): string {
	const urlBytes = Buffer.from(`${url}\0`, 'latin1');
	const head = Buffer.alloc(15);
	head[0] = 0x81;
	head[1] = 0x01;
	head[13] = 0x01;
	head[14] = urlBytes.length;
	const tail = Buffer.alloc(12);
	tail[0] = 0x02;
	tail[1] = 0x04;
	tail.writeUInt32LE(createdAtSeconds >>> 0, 2);
	tail[6] = 0x03;
	tail[7] = 0x04;
	tail.writeUInt32LE((createdAtSeconds + expireSeconds) >>> 0, 8);
	for (let attempt = 0; attempt < 8; attempt++) {
		randomBytes(4).copy(head, 2);
		if (attempt === 7) {
			// Fallback: bytes 2 and 5 close base64 groups 0 and 1, so their low 6 bits become chars 3 and 7.
			head[2] = (head[2] & 0xc0) | 62; // '+'
			head[5] = (head[5] & 0xc0) | 63; // '/'
		}
		const ticket = Buffer.concat([head, urlBytes, tail]).toString('base64');
		if (ticket.includes('+') && ticket.includes('/') && ticket.endsWith('=')) return ticket;
	}
	throw new Error('unreachable: ticket fallback always contains + and /');
}

/** mulberry32: tiny, fast, good enough to make probabilistic faults reproducible. */
export function createPrng(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
