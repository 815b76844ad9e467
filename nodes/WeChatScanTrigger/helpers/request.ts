/**
 * The authentication and decoding pipeline of the WeChat push endpoint, one request at a time
 * (protocol notes §5.1, §5.2, §6). Plain functions with no n8n dependency; nothing here throws on
 * bad input: every rejection is a status plus a short reason that is safe to show and never
 * contains secrets.
 *
 * Status codes:
 * - 400: malformed request (repeated or missing query parameters, unknown encrypt_type, XML that is
 *   not well-formed or not a WeChat message, DOCTYPE/ENTITY, missing Encrypt, anything unexpected).
 * - 401: authentication failed (signature or msg_signature mismatch; ciphertext that does not decrypt
 *   cleanly: bad base64, length, padding or message length mean forged or corrupted data).
 * - 403: authenticated-looking but not allowed (timestamp outside the window, plaintext push while
 *   encryption is required, encrypted push without a configured EncodingAESKey, AppID mismatch).
 * - 413: body larger than maxBodyBytes, in every mode (the outer body and the decrypted message).
 */
import { WeChatCipher, WeChatCryptoError } from './crypto';
import type { DecryptedWithKeyInfo, WeChatKeySlot } from './crypto';
import type { WeChatMessage } from './events';
import { verifyMsgSignature, verifySignature, weChatSignature } from './signature';
import { buildEncryptedReplyXml, buildTextReplyXml, parseWeChatXml, WeChatXmlError, withoutXmlIllegalCharacters } from './xml';

export interface WeChatPushConfig {
	token: string;
	appId: string;
	/** Needed for compatible and safe mode; holds the current (and optionally the previous) key. */
	cipher?: WeChatCipher;
	/** With a cipher configured, refuse plaintext pushes so nobody can downgrade the mode. */
	requireEncryption: boolean;
	/** Maximum |now - timestamp| in seconds; 0 disables the check. */
	timestampToleranceSeconds: number;
	maxBodyBytes: number;
	nowSeconds: () => number;
}

/** Query values are checked at run time, so any parsed query object is accepted. */
export type WeChatQuery = Readonly<Record<string, unknown>>;

export interface WeChatPushRequest {
	query: WeChatQuery;
	rawBody: Buffer | string | undefined;
}

export type RejectionStatus = 400 | 401 | 403 | 413;

export interface RejectedPush<Status extends RejectionStatus = RejectionStatus> {
	ok: false;
	status: Status;
	reason: string;
}

/** The signed query values of an accepted push, which replay detection keys on. */
interface SignedQuery {
	timestamp: string;
	/** Also reused for an encrypted reply's envelope by default. */
	nonce: string;
}

export interface OpenedPlainPush extends SignedQuery {
	ok: true;
	encrypted: false;
	message: WeChatMessage;
}

/**
 * Encrypts a reply XML with the key that decrypted the push and wraps it in the signed envelope.
 * A closure, so the token and keys never appear as data on the result (safe to log or inspect).
 */
export type ReplySealer = (replyXml: string, timeStamp: string, nonce: string, random16?: Buffer) => string;

export interface OpenedEncryptedPush extends SignedQuery {
	ok: true;
	encrypted: true;
	/** The decrypted message; in compatible mode the unauthenticated plaintext copy is ignored. */
	message: WeChatMessage;
	keySlot: WeChatKeySlot;
	sealReply: ReplySealer;
}

export type OpenedPush = OpenedPlainPush | OpenedEncryptedPush | RejectedPush;

type QueryValues<Name extends string> = { [K in Name]: string | undefined };

const PUSH_PARAMS = ['signature', 'timestamp', 'nonce', 'encrypt_type', 'msg_signature'] as const;
const URL_VERIFICATION_PARAMS = ['signature', 'timestamp', 'nonce', 'echostr'] as const;
const TIMESTAMP_PATTERN = /^\d{1,15}$/;

function reject<Status extends RejectionStatus>(status: Status, reason: string): RejectedPush<Status> {
	return { ok: false, status, reason };
}

function defaultNowSeconds(): number {
	return Math.floor(Date.now() / 1000);
}

/** Each named parameter must be absent or a single string; `?a=1&a=2` arrives as an array. */
function readQuery<Name extends string>(query: unknown, names: readonly Name[]): QueryValues<Name> | RejectedPush<400> {
	if (typeof query !== 'object' || query === null) return reject(400, 'Missing query parameters');
	const values = {} as QueryValues<Name>;
	for (const name of names) {
		const value: unknown = (query as Record<string, unknown>)[name];
		if (value !== undefined && typeof value !== 'string') {
			return reject(400, `Query parameter ${name} must be a single value`);
		}
		values[name] = value;
	}
	return values;
}

/** Parsed messages hold only string values, so `ok === false` always means a rejection. */
function isRejected(value: object): value is RejectedPush {
	return (value as { ok?: unknown }).ok === false;
}

/** WeChat signs the timestamp, so a replayed push fails here once it is older than the tolerance. */
function checkTimestamp(
	timestamp: string,
	toleranceSeconds: number,
	nowSeconds: () => number,
): RejectedPush<400 | 403> | null {
	if (!TIMESTAMP_PATTERN.test(timestamp)) return reject(400, 'Query parameter timestamp must be an integer');
	if (toleranceSeconds > 0 && Math.abs(nowSeconds() - Number(timestamp)) > toleranceSeconds) {
		return reject(403, 'Timestamp outside the allowed window (check the server clock)');
	}
	return null;
}

function xmlRejection(error: WeChatXmlError, what: string): RejectedPush {
	switch (error.reason) {
		case 'too-large':
			return reject(413, `${what} too large`);
		case 'doctype':
			return reject(400, `${what}: DOCTYPE and ENTITY declarations are not accepted`);
		case 'not-wechat-xml':
			return reject(400, `${what} is not a WeChat XML message`);
		default:
			return reject(400, `${what} is not well-formed XML`);
	}
}

/** Parses XML, returning a rejection instead of throwing. */
function parseXml(raw: Buffer | string, maxBytes: number, what: string): WeChatMessage | RejectedPush {
	try {
		return parseWeChatXml(raw, maxBytes);
	} catch (error) {
		return error instanceof WeChatXmlError ? xmlRejection(error, what) : reject(400, `${what} could not be parsed`);
	}
}

/**
 * Verifies and decodes one WeChat POST. Never throws: any unexpected failure becomes a 400.
 * Plaintext: signature is checked before the body is read. Encrypted (encrypt_type=aes): only
 * msg_signature is checked (over the Encrypt value), as the protocol says.
 */
export function openWeChatPush(request: WeChatPushRequest, config: WeChatPushConfig): OpenedPush {
	try {
		return openPush(request, config);
	} catch {
		return reject(400, 'Request could not be processed');
	}
}

function openPush(request: WeChatPushRequest, config: WeChatPushConfig): OpenedPush {
	const query = readQuery(request.query, PUSH_PARAMS);
	if (isRejected(query)) return query;
	const { timestamp, nonce } = query;
	if (timestamp === undefined || nonce === undefined) return reject(400, 'Missing timestamp or nonce');
	const staleness = checkTimestamp(timestamp, config.timestampToleranceSeconds, config.nowSeconds);
	if (staleness) return staleness;
	const rawBody = request.rawBody ?? '';

	const mode = query.encrypt_type === undefined ? 'raw' : query.encrypt_type;
	if (mode === 'raw') {
		if (config.requireEncryption && config.cipher) {
			return reject(403, 'Plaintext push refused: this endpoint requires encrypted (safe or compatible mode) pushes');
		}
		if (!verifySignature(config.token, timestamp, nonce, query.signature ?? '')) {
			return reject(401, 'Invalid signature');
		}
		const message = parseXml(rawBody, config.maxBodyBytes, 'Body');
		if (isRejected(message)) return message;
		return { ok: true, encrypted: false, message, timestamp, nonce };
	}
	if (mode !== 'aes') return reject(400, 'Unsupported encrypt_type');

	const cipher = config.cipher;
	if (!cipher) return reject(403, 'Encrypted push received but no EncodingAESKey is configured');
	const envelope = parseXml(rawBody, config.maxBodyBytes, 'Body');
	if (isRejected(envelope)) return envelope;
	const encrypt = envelope.Encrypt;
	if (encrypt === undefined || encrypt === '') return reject(400, 'Missing Encrypt element');
	if (!verifyMsgSignature(config.token, timestamp, nonce, encrypt, query.msg_signature ?? '')) {
		return reject(401, 'Invalid msg_signature');
	}

	let decrypted: DecryptedWithKeyInfo;
	try {
		decrypted = cipher.decryptWithKeyInfo(encrypt);
	} catch (error) {
		if (!(error instanceof WeChatCryptoError)) return reject(400, 'Encrypted payload could not be processed');
		return error.reason === 'appid-mismatch'
			? reject(403, 'Encrypted payload belongs to a different AppID')
			: reject(401, 'Encrypted payload could not be decrypted (wrong EncodingAESKey or corrupted data)');
	}
	const message = parseXml(decrypted.message, config.maxBodyBytes, 'Decrypted message');
	if (isRejected(message)) return message;

	const { token } = config;
	const { keySlot } = decrypted;
	return {
		ok: true,
		encrypted: true,
		message,
		keySlot,
		timestamp,
		nonce,
		sealReply: (replyXml, timeStamp, replyNonce, random16) => {
			const encrypted = cipher.encrypt(replyXml, random16, keySlot);
			const msgSignature = weChatSignature([token, timeStamp, replyNonce, encrypted]);
			return buildEncryptedReplyXml({ encrypt: encrypted, msgSignature, timeStamp, nonce: replyNonce });
		},
	};
}

export type UrlVerificationResult = { ok: true; echostr: string } | RejectedPush<400 | 401 | 403>;

/**
 * GET URL verification (§5.1): answer 200 with `echostr` exactly as received when the signature
 * matches. Official Accounts send a plaintext echostr in every mode. Same status rules as pushes.
 */
export function verifyUrlRequest(
	query: WeChatQuery,
	token: string,
	timestampToleranceSeconds = 0,
	nowSeconds: () => number = defaultNowSeconds,
): UrlVerificationResult {
	try {
		const values = readQuery(query, URL_VERIFICATION_PARAMS);
		if (isRejected(values)) return values;
		const { signature, timestamp, nonce, echostr } = values;
		if (timestamp === undefined || nonce === undefined || echostr === undefined) {
			return reject(400, 'Missing timestamp, nonce or echostr');
		}
		const staleness = checkTimestamp(timestamp, timestampToleranceSeconds, nowSeconds);
		if (staleness) return staleness;
		if (!verifySignature(token, timestamp, nonce, signature ?? '')) return reject(401, 'Invalid signature');
		return { ok: true, echostr };
	} catch {
		return reject(400, 'Request could not be processed');
	}
}

export interface PassiveReplyOptions {
	nowSeconds: () => number;
	/** Fixed bytes for reproducible tests only; fresh random bytes by default. */
	random16?: Buffer;
	/** Defaults to the push's own nonce. */
	nonce?: string;
}

/**
 * The response body that answers a push with a text message (§5.4): identities swapped, and in
 * compatible or safe mode the encrypted envelope with a fresh msg_signature. Empty content gives
 * `success`, because WeChat shows an error for a reply XML with empty content.
 */
export function buildPassiveReply(
	opened: OpenedPlainPush | OpenedEncryptedPush,
	content: string,
	options: PassiveReplyOptions,
): string {
	// Characters XML forbids are dropped from the reply: nothing left is no reply.
	if (withoutXmlIllegalCharacters(content) === '') return 'success';
	const now = Math.floor(options.nowSeconds());
	const replyXml = buildTextReplyXml({
		toUserName: opened.message.FromUserName ?? '',
		fromUserName: opened.message.ToUserName ?? '',
		createTime: now,
		content,
	});
	if (!opened.encrypted) return replyXml;
	return opened.sealReply(replyXml, String(now), options.nonce ?? opened.nonce, options.random16);
}
