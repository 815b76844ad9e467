/**
 * WeChat safe-mode message crypto (protocol notes §6): AES-256-CBC with the IV = first 16 key bytes,
 * auto-padding off and PKCS#7 over 32-byte blocks applied by hand. Plaintext layout:
 * random(16) | msgLen (uint32 BE, UTF-8 bytes) | msg | appid.
 * Errors never carry key material: messages name the problem, not the values.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'crypto';

const ENCODING_AES_KEY_PATTERN = /^[A-Za-z0-9]{43}$/;
/** Standard (not URL-safe) base64 with padding, as WeChat sends it. */
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;
const AES_KEY_BYTES = 32;
const RANDOM_BYTES = 16;
const HEADER_BYTES = RANDOM_BYTES + 4;
/** WeChat pads to 32-byte blocks although AES blocks are 16 bytes (trap §8.7). */
const PAD_BLOCK_BYTES = 32;

export type WeChatCryptoFailure =
	| 'invalid-base64'
	| 'invalid-length'
	| 'invalid-padding'
	| 'invalid-message-length'
	| 'appid-mismatch';

const FAILURE_MESSAGES: Record<WeChatCryptoFailure, string> = {
	'invalid-base64': 'Encrypt is not valid base64',
	'invalid-length': 'Encrypted payload length is not a positive multiple of 16 bytes',
	'invalid-padding': 'Decrypted payload has invalid PKCS#7 padding (wrong key or corrupted ciphertext)',
	'invalid-message-length': 'Decrypted payload has an impossible message length (wrong key or corrupted ciphertext)',
	'appid-mismatch': 'Decrypted payload was encrypted for a different AppID',
};

/** A push that cannot be decrypted. `reason` is machine-readable; the message is safe to log. */
export class WeChatCryptoError extends Error {
	readonly reason: WeChatCryptoFailure;

	constructor(reason: WeChatCryptoFailure) {
		super(FAILURE_MESSAGES[reason]);
		this.name = 'WeChatCryptoError';
		this.reason = reason;
	}
}

/**
 * EncodingAESKey → 32-byte AES key. The 43rd character often carries non-zero trailing bits, so the
 * base64 decode is lenient (Node ignores them), as WeChat's own SDKs do (trap §8.10).
 */
export function parseEncodingAESKey(key: string, label = 'EncodingAESKey'): Buffer {
	if (typeof key !== 'string' || !ENCODING_AES_KEY_PATTERN.test(key)) {
		const length = typeof key === 'string' ? key.length : 0;
		throw new Error(`${label} must be exactly 43 letters or digits (got ${length} characters)`);
	}
	const aesKey = Buffer.from(`${key}=`, 'base64');
	if (aesKey.length !== AES_KEY_BYTES) {
		throw new Error(`${label} must decode to ${AES_KEY_BYTES} bytes (got ${aesKey.length})`);
	}
	return aesKey;
}

/** Which configured EncodingAESKey decrypted a push; the reply must be encrypted with the same one. */
export type WeChatKeySlot = 'current' | 'previous';

export interface DecryptedWithKeyInfo {
	message: string;
	keySlot: WeChatKeySlot;
}

interface AesKey {
	key: Buffer;
	iv: Buffer;
}

/**
 * Random prefixes come from a pool the CSPRNG fills a few KB at a time, and no byte is handed out twice.
 * Each randomBytes call costs about 10 µs under OpenSSL 3 whatever its size, more than the AES work of
 * an encrypted reply (Node caches entropy for randomUUID the same way).
 */
const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomPoolOffset = 0;

function freshRandom16(): Buffer {
	if (randomPoolOffset + RANDOM_BYTES > randomPool.length) {
		randomPool = randomBytes(RANDOM_POOL_BYTES);
		randomPoolOffset = 0;
	}
	randomPoolOffset += RANDOM_BYTES;
	return randomPool.subarray(randomPoolOffset - RANDOM_BYTES, randomPoolOffset);
}

function deriveAesKey(encodingAESKey: string, label: string): AesKey {
	const key = parseEncodingAESKey(encodingAESKey, label);
	return { key, iv: key.subarray(0, 16) };
}

type DecryptAttempt = { message: string } | { failure: WeChatCryptoFailure };

/** Decrypts with one key; returns the message or why it failed (no exceptions on the rotation path). */
function decryptWith(aes: AesKey, ciphertext: Buffer, appId: Buffer): DecryptAttempt {
	const decipher = createDecipheriv('aes-256-cbc', aes.key, aes.iv);
	decipher.setAutoPadding(false);
	const head = decipher.update(ciphertext);
	const tail = decipher.final();
	const plain = tail.length === 0 ? head : Buffer.concat([head, tail]);

	// Every pad byte is checked, not just the last: WeChat's encoder always writes proper PKCS#7.
	const pad = plain[plain.length - 1];
	if (pad < 1 || pad > PAD_BLOCK_BYTES || pad > plain.length) return { failure: 'invalid-padding' };
	for (let i = plain.length - pad; i < plain.length - 1; i++) {
		if (plain[i] !== pad) return { failure: 'invalid-padding' };
	}
	const bodyEnd = plain.length - pad;
	if (bodyEnd < HEADER_BYTES) return { failure: 'invalid-message-length' };
	const messageEnd = HEADER_BYTES + plain.readUInt32BE(RANDOM_BYTES);
	if (messageEnd > bodyEnd) return { failure: 'invalid-message-length' };
	// The AppID suffix check stops a push encrypted for another account sharing the key (trap §8.9).
	if (!plain.subarray(messageEnd, bodyEnd).equals(appId)) return { failure: 'appid-mismatch' };
	return { message: plain.toString('utf8', HEADER_BYTES, messageEnd) };
}

/**
 * Safe-mode cipher for one account. Keys and IVs are derived once here, not per push.
 * Key rotation: pass the previous EncodingAESKey too; `decrypt*` tries the current key first.
 */
export class WeChatCipher {
	private readonly keys: { current: AesKey; previous: AesKey | undefined };

	private readonly appId: Buffer;

	constructor(encodingAESKey: string, appId: string, previousEncodingAESKey?: string) {
		if (typeof appId !== 'string' || appId === '') throw new Error('An AppID is required to decrypt WeChat pushes');
		this.keys = {
			current: deriveAesKey(encodingAESKey, 'EncodingAESKey'),
			previous:
				previousEncodingAESKey === undefined || previousEncodingAESKey === ''
					? undefined
					: deriveAesKey(previousEncodingAESKey, 'Previous EncodingAESKey'),
		};
		this.appId = Buffer.from(appId, 'utf8');
	}

	/** Decrypts an `Encrypt` value; throws WeChatCryptoError. */
	decrypt(encrypt: string): string {
		return this.decryptWithKeyInfo(encrypt).message;
	}

	/** Like `decrypt`, and tells which key worked so the reply can be encrypted with it. */
	decryptWithKeyInfo(encrypt: string): DecryptedWithKeyInfo {
		const ciphertext = Buffer.from(encrypt, 'base64');
		// Node decodes leniently, so the text is checked too. WeChat sends canonical base64, which re-encodes
		// to itself; only other text needs the pattern, which costs about 3 µs on a 600-character value.
		if (ciphertext.toString('base64') !== encrypt && (encrypt.length % 4 !== 0 || !BASE64_PATTERN.test(encrypt))) {
			throw new WeChatCryptoError('invalid-base64');
		}
		if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) throw new WeChatCryptoError('invalid-length');

		const current = decryptWith(this.keys.current, ciphertext, this.appId);
		if ('message' in current) return { message: current.message, keySlot: 'current' };
		if (this.keys.previous === undefined) throw new WeChatCryptoError(current.failure);

		const previous = decryptWith(this.keys.previous, ciphertext, this.appId);
		if ('message' in previous) return { message: previous.message, keySlot: 'previous' };
		// A key that decrypts to a well-formed payload for another AppID is the more useful diagnosis.
		throw new WeChatCryptoError(previous.failure === 'appid-mismatch' ? previous.failure : current.failure);
	}

	/**
	 * Encrypts `message` for WeChat. `random16` is for reproducible tests only; production replies
	 * must use fresh random bytes (the default).
	 */
	encrypt(message: string, random16: Buffer = freshRandom16(), keySlot: WeChatKeySlot = 'current'): string {
		if (random16.length !== RANDOM_BYTES) throw new Error(`random16 must be ${RANDOM_BYTES} bytes`);
		const aes = this.keys[keySlot];
		if (aes === undefined) throw new Error('No previous EncodingAESKey is configured');

		const messageBytes = Buffer.byteLength(message, 'utf8');
		const bodyLength = HEADER_BYTES + messageBytes + this.appId.length;
		const pad = PAD_BLOCK_BYTES - (bodyLength % PAD_BLOCK_BYTES);
		const plain = Buffer.allocUnsafe(bodyLength + pad);
		random16.copy(plain, 0);
		plain.writeUInt32BE(messageBytes, RANDOM_BYTES);
		plain.write(message, HEADER_BYTES, 'utf8');
		this.appId.copy(plain, HEADER_BYTES + messageBytes);
		plain.fill(pad, bodyLength);

		const cipher = createCipheriv('aes-256-cbc', aes.key, aes.iv);
		cipher.setAutoPadding(false);
		const head = cipher.update(plain);
		const tail = cipher.final();
		return (tail.length === 0 ? head : Buffer.concat([head, tail])).toString('base64');
	}
}
