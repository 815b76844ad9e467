/**
 * WeChat push signatures (protocol notes §5.1 and §6): SHA-1 over the sorted, concatenated parts.
 * Plain functions with no n8n dependency.
 */
import { hash, timingSafeEqual } from 'crypto';

/**
 * Lower-case hex SHA-1 of the parts sorted in plain string order and joined with "".
 * `Array.prototype.sort` without a comparator compares UTF-16 code units, which is the order WeChat
 * uses; a numeric sort gives a plausible but wrong hash (trap §8.8: "1714112445" < "415670741").
 * The one-shot `hash` costs half of a Hash object on inputs this short (measured).
 */
export function weChatSignature(parts: string[]): string {
	return hash('sha1', parts.slice().sort().join(''), 'hex');
}

/** Constant-time comparison; a length mismatch is simply false (timingSafeEqual would throw). */
function signatureMatches(expected: string, received: string): boolean {
	const expectedBytes = Buffer.from(expected, 'utf8');
	const receivedBytes = Buffer.from(received, 'utf8');
	return expectedBytes.length === receivedBytes.length && timingSafeEqual(expectedBytes, receivedBytes);
}

/** `signature` of the GET URL verification and of plaintext-mode pushes: sha1(sort([token, timestamp, nonce])). */
export function verifySignature(token: string, timestamp: string, nonce: string, signature: string): boolean {
	return signatureMatches(weChatSignature([token, timestamp, nonce]), signature);
}

/** `msg_signature` of encrypted pushes: sha1(sort([token, timestamp, nonce, Encrypt])). */
export function verifyMsgSignature(
	token: string,
	timestamp: string,
	nonce: string,
	encrypt: string,
	msgSignature: string,
): boolean {
	return signatureMatches(weChatSignature([token, timestamp, nonce, encrypt]), msgSignature);
}
