/**
 * WeChat's side of the event push (protocol notes §5, §6): builds and POSTs scan events exactly as
 * WeChat does (signed query, XML body, plaintext / compatible / safe mode) and sends the GET URL
 * verification. Reuses the trigger's own helpers for signatures, AES and XML.
 */
import { randomBytes } from 'node:crypto';
import { WeChatCipher } from '../../nodes/WeChatScanTrigger/helpers/crypto';
import { verifyMsgSignature, weChatSignature } from '../../nodes/WeChatScanTrigger/helpers/signature';
import { buildWeChatXml, parseWeChatXml } from '../../nodes/WeChatScanTrigger/helpers/xml';
import { makeTicket, randomBase62 } from './random';

export type PushMode = 'plaintext' | 'compatible' | 'safe';

/** `(string & {})` keeps editor completion for the known events while allowing any other. */
export type PushEvent = 'subscribe' | 'SCAN' | 'unsubscribe' | (string & {});

export interface ScanPushOptions {
	token: string;
	/** Required in compatible and safe mode (the AppID suffix inside the ciphertext). */
	appId?: string;
	/** Required in compatible and safe mode. */
	encodingAESKey?: string;
	mode: PushMode;
	event: PushEvent;
	/** subscribe → EventKey `qrscene_<scene>`; SCAN and other events → EventKey `<scene>`. */
	scene?: string;
	/** Defaults to a WeChat-shaped ticket when a scene is given. */
	ticket?: string;
	/** FromUserName; defaults to a random OpenID. */
	openId?: string;
	/** ToUserName; defaults to `gh_` + 12 hex digits. */
	accountId?: string;
	/** CreateTime in unix seconds; defaults to now. */
	createTime?: number;
	/** Query timestamp; defaults to now. */
	timestamp?: string | number;
	/** Query nonce; defaults to random digits like WeChat's. */
	nonce?: string;
	/** Added after the standard fields (or replacing them, keeping their position). */
	extraFields?: Record<string, string | number>;
	/** Fixed AES random bytes for reproducible ciphertext. */
	random16?: Buffer;
	/** Default 10 s. */
	timeoutMs?: number;
}

export interface BuiltScanPush {
	query: Record<string, string>;
	body: string;
	/** The plaintext event fields (what the receiver should end up with). */
	fields: Record<string, string | number>;
	/** The Encrypt value in compatible and safe mode. */
	encrypt?: string;
}

export interface PushResponse {
	status: number;
	body: string;
	headers: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const TICKET_URL_PREFIX = 'http://weixin.qq.com/q/';
const TEMPORARY_QR_SECONDS = 2_592_000;

function nowSeconds(): number {
	return Math.floor(Date.now() / 1000);
}

/** WeChat nonces are decimal numbers of up to 10 digits. */
function randomNonce(): string {
	return String(randomBytes(4).readUInt32BE(0));
}

/** 28 characters of [A-Za-z0-9_-] starting with "o", like WeChat's OpenIDs. */
function randomOpenId(): string {
	return `o${randomBytes(21).toString('base64url').slice(0, 27)}`;
}

function randomAccountId(): string {
	return `gh_${randomBytes(6).toString('hex')}`;
}

function eventFields(options: ScanPushOptions, createTime: number): Record<string, string | number> {
	const fields: Record<string, string | number> = {
		ToUserName: options.accountId ?? randomAccountId(),
		FromUserName: options.openId ?? randomOpenId(),
		CreateTime: createTime,
		MsgType: 'event',
		Event: options.event,
	};
	if (options.scene !== undefined) {
		fields.EventKey = options.event.toLowerCase() === 'subscribe' ? `qrscene_${options.scene}` : options.scene;
		fields.Ticket = options.ticket ?? makeTicket(`${TICKET_URL_PREFIX}${randomBase62(22)}`, createTime, TEMPORARY_QR_SECONDS);
	} else if (options.ticket !== undefined) {
		fields.Ticket = options.ticket;
	}
	return { ...fields, ...options.extraFields };
}

/** The signed query and XML body WeChat would POST for this event. */
export function buildScanPush(options: ScanPushOptions): BuiltScanPush {
	const timestamp = String(options.timestamp ?? nowSeconds());
	const nonce = options.nonce ?? randomNonce();
	const fields = eventFields(options, options.createTime ?? nowSeconds());
	const query: Record<string, string> = {
		signature: weChatSignature([options.token, timestamp, nonce]),
		timestamp,
		nonce,
		openid: String(fields.FromUserName),
	};
	if (options.mode === 'plaintext') return { query, body: buildWeChatXml(fields), fields };

	if (options.appId === undefined || options.encodingAESKey === undefined) {
		throw new Error(`${options.mode} mode needs appId and encodingAESKey`);
	}
	const cipher = new WeChatCipher(options.encodingAESKey, options.appId);
	const encrypt = cipher.encrypt(buildWeChatXml(fields), options.random16);
	query.encrypt_type = 'aes';
	query.msg_signature = weChatSignature([options.token, timestamp, nonce, encrypt]);
	const envelope = options.mode === 'safe' ? { ToUserName: fields.ToUserName } : fields;
	return { query, body: buildWeChatXml({ ...envelope, Encrypt: encrypt }), fields, encrypt };
}

function withQuery(url: string, query: Record<string, string>): string {
	const target = new URL(url);
	for (const name of Object.keys(query)) target.searchParams.set(name, query[name]);
	return target.toString();
}

async function request(url: string, init: { method: string; body?: string; timeoutMs?: number }): Promise<PushResponse> {
	const response = await fetch(url, {
		method: init.method,
		headers: init.body === undefined ? undefined : { 'Content-Type': 'text/xml' },
		body: init.body,
		signal: AbortSignal.timeout(init.timeoutMs ?? DEFAULT_TIMEOUT_MS),
	});
	const headers: Record<string, string> = {};
	response.headers.forEach((value, name) => {
		headers[name] = value;
	});
	return { status: response.status, body: await response.text(), headers };
}

/** POSTs one event push like WeChat; `push` is what was sent. */
export async function sendScanPush(url: string, options: ScanPushOptions): Promise<PushResponse & { push: BuiltScanPush }> {
	const push = buildScanPush(options);
	const response = await request(withQuery(url, push.query), {
		method: 'POST',
		body: push.body,
		timeoutMs: options.timeoutMs,
	});
	return { ...response, push };
}

export interface UrlVerificationOptions {
	token: string;
	/** Defaults to random digits, like WeChat's. */
	echostr?: string;
	timestamp?: string | number;
	nonce?: string;
	timeoutMs?: number;
}

/** The GET WeChat sends when the admin saves the server URL; a correct endpoint echoes `echostr`. */
export async function sendUrlVerification(
	url: string,
	options: UrlVerificationOptions,
): Promise<PushResponse & { echostr: string }> {
	const timestamp = String(options.timestamp ?? nowSeconds());
	const nonce = options.nonce ?? randomNonce();
	const echostr = options.echostr ?? `${randomBytes(4).readUInt32BE(0)}${randomBytes(4).readUInt32BE(0)}`;
	const query = { signature: weChatSignature([options.token, timestamp, nonce]), echostr, timestamp, nonce };
	const response = await request(withQuery(url, query), { method: 'GET', timeoutMs: options.timeoutMs });
	return { ...response, echostr };
}

export interface OpenedReply {
	/** MsgSignature matches sha1(sort([token, TimeStamp, Nonce, Encrypt])). */
	signatureValid: boolean;
	/** The decrypted reply XML. */
	xml: string;
	/** The decrypted reply's fields. */
	fields: Record<string, string>;
}

/** What WeChat does with an encrypted passive reply: check MsgSignature, decrypt, parse. */
export function openEncryptedReply(
	body: string,
	options: { token: string; appId: string; encodingAESKey: string },
): OpenedReply {
	const envelope = parseWeChatXml(body);
	const { Encrypt: encrypt, MsgSignature: msgSignature, TimeStamp: timeStamp, Nonce: nonce } = envelope;
	if (encrypt === undefined || msgSignature === undefined || timeStamp === undefined || nonce === undefined) {
		throw new Error('Not an encrypted reply envelope (Encrypt, MsgSignature, TimeStamp and Nonce are required)');
	}
	const xml = new WeChatCipher(options.encodingAESKey, options.appId).decrypt(encrypt);
	return {
		signatureValid: verifyMsgSignature(options.token, timeStamp, nonce, encrypt, msgSignature),
		xml,
		fields: parseWeChatXml(xml),
	};
}
