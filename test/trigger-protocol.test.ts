/**
 * The scan trigger's protocol helpers against the official vectors (protocol notes §9), every
 * rejection path of openWeChatPush, and property tests for the crypto and the never-throw contract.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseEncodingAESKey, WeChatCipher, WeChatCryptoError } from '../nodes/WeChatScanTrigger/helpers/crypto';
import {
	classifyEvent,
	dedupeKey,
	matchesSceneFilter,
	parseSceneFilters,
	RecentEventCache,
	sceneFromEventKey,
	sceneIdFromScene,
	toScanEventOutput,
} from '../nodes/WeChatScanTrigger/helpers/events';
import { deliveryState, settledDelivery, UnansweredDeliveries } from '../nodes/WeChatScanTrigger/helpers/deliveries';
import { keyFingerprint, RecentKeys } from '../nodes/WeChatScanTrigger/helpers/recentKeys';
import { checkSignedQuery, replayRetentionMs, signedQueryKey } from '../nodes/WeChatScanTrigger/helpers/replays';
import { buildPassiveReply, openWeChatPush, verifyUrlRequest } from '../nodes/WeChatScanTrigger/helpers/request';
import type { OpenedPush, WeChatPushConfig, WeChatQuery } from '../nodes/WeChatScanTrigger/helpers/request';
import { verifyMsgSignature, verifySignature, weChatSignature } from '../nodes/WeChatScanTrigger/helpers/signature';
import {
	buildEncryptedReplyXml,
	buildTextReplyXml,
	buildWeChatXml,
	cdata,
	parseWeChatXml,
	WeChatXmlError,
} from '../nodes/WeChatScanTrigger/helpers/xml';
import { buildScanPush, openEncryptedReply } from './simulator/push';
import type { ScanPushOptions } from './simulator/push';

// §9 common inputs.
const TOKEN = 'AAAAA';
const AES_KEY = 'A'.repeat(43);
const APP_ID = 'wxba5fad812f8e6fb9';

// §9.3
const VECTOR_ENCRYPT =
	'+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=';
const VECTOR_MESSAGE =
	'{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}';
const SAFE_QUERY = {
	signature: '6c5c811b55cc85e0e1b54100749188c20beb3f5d',
	timestamp: '1714112445',
	nonce: '415670741',
	openid: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY',
	encrypt_type: 'aes',
	msg_signature: '046e02f8204d34f8ba5fa3b1db94908f3df2e9b3',
};

// §9.4
const REPLY_MESSAGE = '{"demo_resp":"good luck"}';
const REPLY_RANDOM16 = Buffer.from('707722b803182950', 'ascii');
const REPLY_ENCRYPT = 'ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==';
const REPLY_SIGNATURE = '1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1';

// §9.5
const SUBSCRIBE_QR_XML = `<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe]]></Event>
<EventKey><![CDATA[qrscene_123123]]></EventKey>
<Ticket><![CDATA[TICKET]]></Ticket>
</xml>`;
const SCAN_XML = `<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[SCAN]]></Event>
<EventKey><![CDATA[SCENE_VALUE]]></EventKey>
<Ticket><![CDATA[TICKET]]></Ticket>
</xml>`;
const PLAIN_FOLLOW_XML = `<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe]]></Event>
</xml>`;

const NOW = 1714112445;
const OTHER_KEY = 'dummyRotatedKey0123456789abcdefghijklmnopqr';
const THIRD_KEY = 'dummyThirdKey0123456789abcdefghijklmnopqrst';
const FIXED_RANDOM16 = Buffer.from('0123456789abcdef', 'ascii');
const OPEN_ID = 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY';
const ACCOUNT_ID = 'gh_97417a04a28d';

const cipher = new WeChatCipher(AES_KEY, APP_ID);

function config(overrides: Partial<WeChatPushConfig> = {}): WeChatPushConfig {
	return {
		token: TOKEN,
		appId: APP_ID,
		cipher,
		requireEncryption: false,
		timestampToleranceSeconds: 300,
		maxBodyBytes: 64 * 1024,
		nowSeconds: () => NOW,
		...overrides,
	};
}

function push(mode: ScanPushOptions['mode'], overrides: Partial<ScanPushOptions> = {}) {
	return buildScanPush({
		token: TOKEN,
		appId: APP_ID,
		encodingAESKey: AES_KEY,
		mode,
		event: 'subscribe',
		scene: '123123',
		ticket: 'TICKET',
		openId: OPEN_ID,
		accountId: ACCOUNT_ID,
		createTime: NOW,
		timestamp: NOW,
		nonce: '415670741',
		random16: FIXED_RANDOM16,
		...overrides,
	});
}

function open(
	built: { query: Record<string, string>; body: string },
	options: { config?: Partial<WeChatPushConfig>; query?: WeChatQuery; body?: Buffer | string | undefined } = {},
): OpenedPush {
	return openWeChatPush(
		{ query: { ...built.query, ...options.query }, rawBody: 'body' in options ? options.body : built.body },
		config(options.config),
	);
}

function rejection(opened: OpenedPush): { status: number; reason: string } {
	if (opened.ok) throw new Error('expected a rejection');
	return { status: opened.status, reason: opened.reason };
}

function accepted(opened: OpenedPush) {
	if (!opened.ok) throw new Error(`expected acceptance, got ${opened.status} ${opened.reason}`);
	return opened;
}

/** Signs a chosen Encrypt value the way WeChat would (used to get past msg_signature on purpose). */
function signedAesQuery(encrypt: string): Record<string, string> {
	return {
		signature: weChatSignature([TOKEN, String(NOW), '415670741']),
		timestamp: String(NOW),
		nonce: '415670741',
		encrypt_type: 'aes',
		msg_signature: weChatSignature([TOKEN, String(NOW), '415670741', encrypt]),
	};
}

function safeBody(encrypt: string): string {
	return buildWeChatXml({ ToUserName: ACCOUNT_ID, Encrypt: encrypt });
}

/** Raw AES-256-CBC with the §9 key (32 zero bytes, zero IV), auto-padding off. */
function rawAes(direction: 'encrypt' | 'decrypt', data: Buffer, key = parseEncodingAESKey(AES_KEY)): Buffer {
	const iv = key.subarray(0, 16);
	const engine = direction === 'encrypt' ? createCipheriv('aes-256-cbc', key, iv) : createDecipheriv('aes-256-cbc', key, iv);
	engine.setAutoPadding(false);
	return Buffer.concat([engine.update(data), engine.final()]);
}

describe('§9.1 URL verification', () => {
	const query = {
		signature: 'f464b24fc39322e44b38aa78f5edd27bd1441696',
		echostr: '4375120948345356249',
		timestamp: '1714036504',
		nonce: '1514711492',
	};

	it('sorts, joins and hashes as in the official example', () => {
		expect(['AAAAA', '1714036504', '1514711492'].sort()).toEqual(['1514711492', '1714036504', 'AAAAA']);
		expect(createHash('sha1').update('15147114921714036504AAAAA').digest('hex')).toBe(query.signature);
		expect(weChatSignature([TOKEN, query.timestamp, query.nonce])).toBe(query.signature);
	});

	it('echoes echostr exactly when the signature matches', () => {
		expect(verifyUrlRequest(query, TOKEN)).toEqual({ ok: true, echostr: '4375120948345356249' });
		expect(verifyUrlRequest(query, TOKEN, 300, () => 1714036504 + 299)).toEqual({ ok: true, echostr: '4375120948345356249' });
	});

	it('rejects a wrong signature or token with 401 and does not echo', () => {
		expect(verifyUrlRequest({ ...query, signature: 'f'.repeat(40) }, TOKEN)).toMatchObject({ ok: false, status: 401 });
		expect(verifyUrlRequest(query, 'BBBBB')).toMatchObject({ ok: false, status: 401 });
		expect(verifyUrlRequest({ ...query, signature: undefined }, TOKEN)).toMatchObject({ ok: false, status: 401 });
		expect(verifyUrlRequest({ ...query, signature: 'short' }, TOKEN)).toMatchObject({ ok: false, status: 401 });
	});

	it('rejects missing or repeated parameters with 400 and a stale timestamp with 403', () => {
		expect(verifyUrlRequest({ ...query, echostr: undefined }, TOKEN)).toMatchObject({ ok: false, status: 400 });
		expect(verifyUrlRequest({ ...query, nonce: undefined }, TOKEN)).toMatchObject({ ok: false, status: 400 });
		expect(verifyUrlRequest({ ...query, echostr: ['1', '2'] }, TOKEN)).toMatchObject({ ok: false, status: 400 });
		expect(verifyUrlRequest({ ...query, timestamp: 'soon' }, TOKEN)).toMatchObject({ ok: false, status: 400 });
		expect(verifyUrlRequest(query, TOKEN, 300, () => 1714036504 + 301)).toMatchObject({ ok: false, status: 403 });
		expect(verifyUrlRequest(null as unknown as WeChatQuery, TOKEN)).toMatchObject({ ok: false, status: 400 });
	});
});

describe('§9.2 plaintext-mode POST', () => {
	const query = { signature: '899cf89e464efb63f54ddac96b0a0a235f53aa78', timestamp: '1714037059', nonce: '486452656' };
	// The doc's body is JSON (Mini Program format); Official Accounts send the same fields as XML.
	const body = buildWeChatXml({
		ToUserName: 'gh_97417a04a28d',
		FromUserName: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY',
		CreateTime: 1714037059,
		MsgType: 'event',
		Event: 'debug_demo',
		debug_str: 'hello world',
	});

	it('verifies the official signature', () => {
		expect(createHash('sha1').update('1714037059486452656AAAAA').digest('hex')).toBe(query.signature);
		expect(verifySignature(TOKEN, query.timestamp, query.nonce, query.signature)).toBe(true);
	});

	it('opens the push with the signature and gives every field as a string', () => {
		const opened = accepted(openWeChatPush({ query, rawBody: body }, config({ nowSeconds: () => 1714037059 })));
		expect(opened.encrypted).toBe(false);
		expect(opened.message).toEqual({
			ToUserName: 'gh_97417a04a28d',
			FromUserName: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY',
			CreateTime: '1714037059',
			MsgType: 'event',
			Event: 'debug_demo',
			debug_str: 'hello world',
		});
		expect(classifyEvent(opened.message)).toBeNull();
	});
});

describe('§9.3 safe-mode POST', () => {
	it('verifies signature and msg_signature', () => {
		expect(createHash('sha1').update('1714112445415670741AAAAA').digest('hex')).toBe(SAFE_QUERY.signature);
		expect(verifySignature(TOKEN, SAFE_QUERY.timestamp, SAFE_QUERY.nonce, SAFE_QUERY.signature)).toBe(true);
		expect(
			verifyMsgSignature(TOKEN, SAFE_QUERY.timestamp, SAFE_QUERY.nonce, VECTOR_ENCRYPT, SAFE_QUERY.msg_signature),
		).toBe(true);
	});

	it('sorts in plain string order, not numerically (the sort-order trap)', () => {
		const parts = [TOKEN, SAFE_QUERY.timestamp, SAFE_QUERY.nonce, VECTOR_ENCRYPT];
		expect(parts.slice().sort()).toEqual([VECTOR_ENCRYPT, '1714112445', '415670741', 'AAAAA']);
		const numericFirst = [SAFE_QUERY.nonce, SAFE_QUERY.timestamp, TOKEN, VECTOR_ENCRYPT];
		const wrong = createHash('sha1').update(numericFirst.join('')).digest('hex');
		expect(wrong).not.toBe(SAFE_QUERY.msg_signature);
		expect(weChatSignature(parts)).toBe(SAFE_QUERY.msg_signature);
		expect(weChatSignature(numericFirst)).toBe(SAFE_QUERY.msg_signature);
		// '+' (0x2B) sorts before digits; the caller's array is not reordered.
		expect(weChatSignature(['1', '+'])).toBe(createHash('sha1').update('+1').digest('hex'));
		expect(parts[0]).toBe(TOKEN);
	});

	it('decrypts with every documented intermediate value', () => {
		const key = parseEncodingAESKey(AES_KEY);
		expect(key).toEqual(Buffer.alloc(32));
		const ciphertext = Buffer.from(VECTOR_ENCRYPT, 'base64');
		expect(ciphertext.length).toBe(224);
		const plain = rawAes('decrypt', ciphertext);
		const pad = plain[plain.length - 1];
		expect(pad).toBe(19);
		expect(plain.subarray(plain.length - pad).every((byte) => byte === 19)).toBe(true);
		const body = plain.subarray(0, plain.length - pad);
		expect(body.length).toBe(205);
		expect(body.subarray(0, 16).toString('ascii')).toBe('a8eedb185eb2fecf');
		expect(body.subarray(0, 16).toString('hex')).toBe('61386565646231383565623266656366');
		expect(body.readUInt32BE(16)).toBe(167);
		expect(body.subarray(20, 20 + 167).toString('utf8')).toBe(VECTOR_MESSAGE);
		expect(body.subarray(20 + 167).toString('utf8')).toBe(APP_ID);
		expect(cipher.decrypt(VECTOR_ENCRYPT)).toBe(VECTOR_MESSAGE);
		expect(cipher.decryptWithKeyInfo(VECTOR_ENCRYPT)).toEqual({ message: VECTOR_MESSAGE, keySlot: 'current' });
	});

	it('fails with Node default auto-padding (trap §8.7)', () => {
		const decipher = createDecipheriv('aes-256-cbc', Buffer.alloc(32), Buffer.alloc(16));
		expect(() => Buffer.concat([decipher.update(Buffer.from(VECTOR_ENCRYPT, 'base64')), decipher.final()])).toThrow(
			/bad decrypt/,
		);
	});

	it('authenticates and decrypts the official push, then refuses its JSON payload (Official Accounts push XML)', () => {
		const opened = openWeChatPush(
			{ query: SAFE_QUERY, rawBody: safeBody(VECTOR_ENCRYPT) },
			config({ nowSeconds: () => NOW }),
		);
		expect(rejection(opened)).toEqual({ status: 400, reason: 'Decrypted message is not well-formed XML' });
		// The same push with a wrong msg_signature stops before decryption.
		const forged = openWeChatPush(
			{ query: { ...SAFE_QUERY, msg_signature: '0'.repeat(40) }, rawBody: safeBody(VECTOR_ENCRYPT) },
			config(),
		);
		expect(rejection(forged).status).toBe(401);
	});
});

describe('§9.4 encrypted reply', () => {
	it('produces the exact Encrypt and MsgSignature from fixed random bytes', () => {
		const encrypt = cipher.encrypt(REPLY_MESSAGE, REPLY_RANDOM16);
		expect(encrypt).toBe(REPLY_ENCRYPT);
		const plain = rawAes('decrypt', Buffer.from(encrypt, 'base64'));
		expect(plain.length).toBe(64);
		expect(plain[63]).toBe(1); // 63 unpadded bytes pad to 64
		expect(plain.readUInt32BE(16)).toBe(25);
		expect(weChatSignature([TOKEN, '1713424427', '415670741', encrypt])).toBe(REPLY_SIGNATURE);
	});

	it('wraps the values in the §6 XML envelope', () => {
		const xml = buildEncryptedReplyXml({
			encrypt: REPLY_ENCRYPT,
			msgSignature: REPLY_SIGNATURE,
			timeStamp: 1713424427,
			nonce: '415670741',
		});
		expect(xml).toBe(
			`<xml><Encrypt><![CDATA[${REPLY_ENCRYPT}]]></Encrypt><MsgSignature><![CDATA[${REPLY_SIGNATURE}]]></MsgSignature>` +
				'<TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>',
		);
		expect(() => buildEncryptedReplyXml({ encrypt: 'x', msgSignature: 'y', timeStamp: '1<2', nonce: 'n' })).toThrow();
	});

	it('seals the reply of an opened push into the same envelope', () => {
		const opened = accepted(open(push('safe')));
		if (!opened.encrypted) throw new Error('expected an encrypted push');
		const envelope = opened.sealReply(REPLY_MESSAGE, '1713424427', '415670741', REPLY_RANDOM16);
		expect(parseWeChatXml(envelope)).toEqual({
			Encrypt: REPLY_ENCRYPT,
			MsgSignature: REPLY_SIGNATURE,
			TimeStamp: '1713424427',
			Nonce: '415670741',
		});
	});
});

describe('§9.5 event bodies', () => {
	it('subscribe via QR: scene 123123 without the qrscene_ prefix', () => {
		const message = parseWeChatXml(SUBSCRIBE_QR_XML);
		expect(message).toEqual({
			ToUserName: 'toUser',
			FromUserName: 'FromUser',
			CreateTime: '123456789',
			MsgType: 'event',
			Event: 'subscribe',
			EventKey: 'qrscene_123123',
			Ticket: 'TICKET',
		});
		expect(classifyEvent(message)).toBe('subscribeScene');
		expect(toScanEventOutput(message)).toEqual({
			event: 'subscribe',
			isNewFollower: true,
			openId: 'FromUser',
			accountId: 'toUser',
			scene: '123123',
			sceneId: 123123,
			ticket: 'TICKET',
			createTime: 123456789,
			message,
		});
	});

	it('SCAN by a follower: the bare scene, nothing to strip', () => {
		const message = parseWeChatXml(Buffer.from(SCAN_XML, 'utf8'));
		expect(classifyEvent(message)).toBe('scan');
		expect(toScanEventOutput(message)).toMatchObject({
			event: 'SCAN',
			isNewFollower: false,
			scene: 'SCENE_VALUE',
			sceneId: null,
			ticket: 'TICKET',
		});
	});

	it('plain follow: no EventKey, no scene, no ticket', () => {
		const message = parseWeChatXml(PLAIN_FOLLOW_XML);
		expect(message.EventKey).toBeUndefined();
		expect(classifyEvent(message)).toBe('subscribe');
		expect(toScanEventOutput(message)).toMatchObject({ isNewFollower: true, scene: null, sceneId: null, ticket: null });
		expect(classifyEvent({ ...message, EventKey: '' })).toBe('subscribe');
		expect(sceneFromEventKey('subscribe', '')).toBeNull();
	});

	it('the same events arrive intact through all three modes', () => {
		for (const mode of ['plaintext', 'compatible', 'safe'] as const) {
			const subscribe = accepted(open(push(mode)));
			expect(toScanEventOutput(subscribe.message)).toMatchObject({ scene: '123123', sceneId: 123123, openId: OPEN_ID });
			const scan = accepted(open(push(mode, { event: 'SCAN', scene: 'SCENE_VALUE' })));
			expect(toScanEventOutput(scan.message)).toMatchObject({ event: 'SCAN', scene: 'SCENE_VALUE', ticket: 'TICKET' });
			expect(subscribe.encrypted).toBe(mode !== 'plaintext');
		}
	});
});

describe('openWeChatPush rejections', () => {
	it('bad signature in plaintext mode → 401', () => {
		const built = push('plaintext');
		expect(rejection(open(built, { query: { signature: '0'.repeat(40) } })).status).toBe(401);
		expect(rejection(open(built, { query: { signature: undefined } })).status).toBe(401);
		expect(rejection(open(built, { query: { signature: 'abc' } })).status).toBe(401);
		expect(rejection(open(built, { query: { signature: built.query.signature.toUpperCase() } })).status).toBe(401);
		expect(rejection(open(built, { config: { token: 'BBBBB' } }))).toEqual({ status: 401, reason: 'Invalid signature' });
	});

	it('checks the signature before reading the body', () => {
		const built = push('plaintext');
		const opened = open(built, { query: { signature: '0'.repeat(40) }, body: '<!DOCTYPE x><xml>' });
		expect(rejection(opened)).toEqual({ status: 401, reason: 'Invalid signature' });
	});

	it('bad or missing msg_signature → 401', () => {
		const built = push('safe');
		expect(rejection(open(built, { query: { msg_signature: '0'.repeat(40) } }))).toEqual({
			status: 401,
			reason: 'Invalid msg_signature',
		});
		expect(rejection(open(built, { query: { msg_signature: undefined } })).status).toBe(401);
		// A correct `signature` does not stand in for msg_signature.
		expect(rejection(open(built, { query: { msg_signature: built.query.signature } })).status).toBe(401);
	});

	it('a push encrypted for another AppID → 403', () => {
		const built = push('safe');
		const opened = open(built, { config: { cipher: new WeChatCipher(AES_KEY, 'wx0000000000000000') } });
		expect(rejection(opened)).toEqual({ status: 403, reason: 'Encrypted payload belongs to a different AppID' });
		expect(() => new WeChatCipher(AES_KEY, 'wx0000000000000000').decrypt(built.encrypt ?? '')).toThrow(
			expect.objectContaining({ reason: 'appid-mismatch' }),
		);
	});

	it('tampered ciphertext → 401, with or without a matching msg_signature', () => {
		const built = push('safe');
		const bytes = Buffer.from(built.encrypt ?? '', 'base64');
		bytes[0] ^= 0x80; // garbles block 0 and flips the top bit of msgLen in block 1
		const tampered = bytes.toString('base64');
		expect(rejection(open(built, { body: safeBody(tampered) })).status).toBe(401);
		const resigned = open({ query: signedAesQuery(tampered), body: safeBody(tampered) });
		expect(rejection(resigned).status).toBe(401);
		expect(() => cipher.decrypt(tampered)).toThrow(expect.objectContaining({ reason: 'invalid-message-length' }));
	});

	it('bad padding → 401', () => {
		const layout = Buffer.concat([
			FIXED_RANDOM16,
			Buffer.from([0, 0, 0, 2]),
			Buffer.from('<x', 'utf8'),
			Buffer.from(APP_ID, 'utf8'),
		]); // 40 bytes
		for (const pad of [0, 33, 24]) {
			const block = Buffer.alloc(64 - layout.length, pad);
			if (pad === 24) block[block.length - 2] = 7; // right value at the end, wrong bytes before it
			const encrypt = rawAes('encrypt', Buffer.concat([layout, block])).toString('base64');
			expect(() => cipher.decrypt(encrypt)).toThrow(expect.objectContaining({ reason: 'invalid-padding' }));
			const opened = open({ query: signedAesQuery(encrypt), body: safeBody(encrypt) });
			expect(rejection(opened)).toEqual({
				status: 401,
				reason: 'Encrypted payload could not be decrypted (wrong EncodingAESKey or corrupted data)',
			});
		}
	});

	it('base64 and length problems → 401', () => {
		for (const [encrypt, reason] of [
			['not base64!', 'invalid-base64'],
			['QUJD', 'invalid-length'],
			['-_-_', 'invalid-base64'],
			[Buffer.alloc(20).toString('base64'), 'invalid-length'],
		] as const) {
			expect(() => cipher.decrypt(encrypt)).toThrow(expect.objectContaining({ reason }));
			expect(rejection(open({ query: signedAesQuery(encrypt), body: safeBody(encrypt) })).status).toBe(401);
		}
	});

	it('a valid but different EncodingAESKey → 401; an invalid key is refused up front without echoing it', () => {
		const built = push('safe', { encodingAESKey: OTHER_KEY });
		expect(rejection(open(built)).status).toBe(401);
		for (const bad of ['short', `${AES_KEY}A`, `${'A'.repeat(42)}+`, `${'A'.repeat(42)}=`, '']) {
			let thrown: unknown;
			try {
				new WeChatCipher(bad, APP_ID);
			} catch (error) {
				thrown = error;
			}
			expect(thrown).toBeInstanceOf(Error);
			expect((thrown as Error).message).toMatch(/EncodingAESKey must be exactly 43 letters or digits/);
			if (bad !== '') expect((thrown as Error).message).not.toContain(bad);
		}
		expect(() => new WeChatCipher(AES_KEY, '')).toThrow(/AppID/);
	});

	it('stale and future timestamps → 403; the edge of the window passes; tolerance 0 disables', () => {
		const built = push('safe');
		expect(rejection(open(built, { config: { nowSeconds: () => NOW + 301 } })).status).toBe(403);
		expect(rejection(open(built, { config: { nowSeconds: () => NOW - 301 } })).status).toBe(403);
		expect(open(built, { config: { nowSeconds: () => NOW + 300 } }).ok).toBe(true);
		expect(open(built, { config: { nowSeconds: () => NOW - 300 } }).ok).toBe(true);
		expect(open(built, { config: { nowSeconds: () => NOW + 86_400 * 365, timestampToleranceSeconds: 0 } }).ok).toBe(true);
		const plain = push('plaintext');
		expect(rejection(open(plain, { config: { nowSeconds: () => NOW + 3600 } }))).toEqual({
			status: 403,
			reason: 'Timestamp outside the allowed window (check the server clock)',
		});
	});

	it('missing or non-numeric timestamp and nonce → 400', () => {
		const built = push('plaintext');
		expect(rejection(open(built, { query: { timestamp: undefined } })).status).toBe(400);
		expect(rejection(open(built, { query: { nonce: undefined } })).status).toBe(400);
		expect(rejection(open(built, { query: { timestamp: '1e9' } })).status).toBe(400);
		expect(rejection(open(built, { query: { timestamp: '-5' } })).status).toBe(400);
	});

	it('malformed XML → 400 in every mode', () => {
		const plain = push('plaintext');
		expect(rejection(open(plain, { body: '<xml><A></xml>' }))).toEqual({ status: 400, reason: 'Body is not well-formed XML' });
		expect(rejection(open(plain, { body: undefined })).status).toBe(400);
		expect(rejection(open(plain, { body: '' })).status).toBe(400);
		expect(rejection(open(plain, { body: '<root><A>1</A></root>' }))).toEqual({
			status: 400,
			reason: 'Body is not a WeChat XML message',
		});
		const safe = push('safe');
		expect(rejection(open(safe, { body: `${safe.body}<extra>` })).status).toBe(400);
		// Well-signed ciphertext whose plaintext is not XML.
		const encrypt = cipher.encrypt('<xml><A>unclosed</xml>', FIXED_RANDOM16);
		expect(rejection(open({ query: signedAesQuery(encrypt), body: safeBody(encrypt) }))).toEqual({
			status: 400,
			reason: 'Decrypted message is not well-formed XML',
		});
	});

	it('oversized bodies → 413 in every mode, measured in bytes', () => {
		for (const mode of ['plaintext', 'compatible', 'safe'] as const) {
			const built = push(mode);
			const size = Buffer.byteLength(built.body);
			expect(open(built, { config: { maxBodyBytes: size } }).ok).toBe(true);
			expect(rejection(open(built, { config: { maxBodyBytes: size - 1 } })).status).toBe(413);
			expect(rejection(open(built, { config: { maxBodyBytes: size - 1 }, body: Buffer.from(built.body) })).status).toBe(
				413,
			);
		}
		const chinese = push('plaintext', { scene: '门店'.repeat(30) });
		expect(chinese.body.length).toBeLessThan(Buffer.byteLength(chinese.body));
		expect(rejection(open(chinese, { config: { maxBodyBytes: chinese.body.length } })).status).toBe(413);
	});

	it('DOCTYPE, ENTITY and entity bombs → 400 without expansion', () => {
		const bomb =
			'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' +
			'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><Event>&c;</Event></xml>';
		const plain = push('plaintext');
		const reason = 'Body: DOCTYPE and ENTITY declarations are not accepted';
		expect(rejection(open(plain, { body: bomb }))).toEqual({ status: 400, reason });
		expect(rejection(open(plain, { body: '<!ENTITY x "y"><xml/>' }))).toEqual({ status: 400, reason });
		expect(rejection(open(plain, { body: '<!doctype xml><xml/>' }))).toEqual({ status: 400, reason });
		expect(rejection(open(push('safe'), { body: bomb }))).toEqual({ status: 400, reason });
		const innerBomb = cipher.encrypt(bomb, FIXED_RANDOM16);
		expect(rejection(open({ query: signedAesQuery(innerBomb), body: safeBody(innerBomb) }))).toEqual({
			status: 400,
			reason: 'Decrypted message: DOCTYPE and ENTITY declarations are not accepted',
		});
		// Without a DOCTYPE an entity reference is just text: never expanded.
		const signed = push('plaintext');
		const opened = accepted(open(signed, { body: '<xml><Event>&c;&amp;</Event></xml>' }));
		expect(opened.message.Event).toBe('&c;&amp;');
	});

	it('a declaration inside CDATA is text: a follower\'s "<!doctype html>" or a scene "<!ENTITY promo>" is accepted', () => {
		const text = push('plaintext', { event: 'x', scene: undefined, ticket: undefined, extraFields: { MsgType: 'text', Content: '<!doctype html> <!ENTITY x "y">' } });
		expect(accepted(open(text)).message.Content).toBe('<!doctype html> <!ENTITY x "y">');
		for (const mode of ['plaintext', 'safe', 'compatible'] as const) {
			const scan = push(mode, { event: 'SCAN', scene: '<!ENTITY promo>' });
			expect(accepted(open(scan)).message.EventKey).toBe('<!ENTITY promo>');
		}
		// The full parser's path (a carriage return leaves the fast path) agrees, comments included.
		const viaParser = '<xml>\r\n<!-- <!DOCTYPE x> --><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[<!DOCTYPE y>]]></Content></xml>';
		expect(accepted(open(push('plaintext'), { body: viaParser })).message.Content).toBe('<!DOCTYPE y>');

		const reason = 'Body: DOCTYPE and ENTITY declarations are not accepted';
		for (const body of [
			'<xml><A><![CDATA[x]]><!ENTITY y "z"></A></xml>',
			'<xml><A><![CDATA[]]></A></xml><!DOCTYPE x>',
			'<![CDATA[]]><!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>',
			'<xml><!-- --><!ELEMENT a ANY><A>1</A></xml>',
			'<xml><A><!DOCTYPE x></A></xml>',
		]) {
			expect(rejection(open(push('plaintext'), { body }))).toEqual({ status: 400, reason });
		}
		// An unclosed CDATA section hides nothing: the body is refused as malformed.
		expect(rejection(open(push('plaintext'), { body: '<xml><A><![CDATA[<!DOCTYPE x></A></xml>' })).status).toBe(400);
	});

	it('missing or empty Encrypt → 400', () => {
		const built = push('safe');
		const withoutEncrypt = buildWeChatXml({ ToUserName: ACCOUNT_ID });
		expect(rejection(open(built, { body: withoutEncrypt }))).toEqual({ status: 400, reason: 'Missing Encrypt element' });
		expect(rejection(open(built, { body: safeBody('') })).status).toBe(400);
		// Compatible-mode fields without Encrypt are not accepted as a plaintext fallback.
		expect(rejection(open(built, { body: push('plaintext').body })).status).toBe(400);
	});

	it('downgrade: a plaintext push is refused when encryption is required → 403', () => {
		const plain = push('plaintext');
		expect(rejection(open(plain, { config: { requireEncryption: true } }))).toEqual({
			status: 403,
			reason: 'Plaintext push refused: this endpoint requires encrypted (safe or compatible mode) pushes',
		});
		// Stripping encrypt_type from a safe push does not help either.
		const safe = push('safe');
		expect(rejection(open(safe, { config: { requireEncryption: true }, query: { encrypt_type: undefined } })).status).toBe(
			403,
		);
		expect(rejection(open(safe, { config: { requireEncryption: true }, query: { encrypt_type: 'raw' } })).status).toBe(403);
		// Without a key, requireEncryption cannot apply (documented); encrypted pushes still need the key.
		expect(open(plain, { config: { requireEncryption: true, cipher: undefined } }).ok).toBe(true);
		expect(open(push('safe'), { config: { requireEncryption: true } }).ok).toBe(true);
	});

	it('an encrypted push without a configured EncodingAESKey → 403', () => {
		expect(rejection(open(push('safe'), { config: { cipher: undefined } }))).toEqual({
			status: 403,
			reason: 'Encrypted push received but no EncodingAESKey is configured',
		});
	});

	it('repeated query parameters → 400', () => {
		const plain = push('plaintext');
		const safe = push('safe');
		expect(rejection(open(plain, { query: { signature: [plain.query.signature, plain.query.signature] } }))).toEqual({
			status: 400,
			reason: 'Query parameter signature must be a single value',
		});
		expect(rejection(open(plain, { query: { timestamp: [String(NOW)] } })).status).toBe(400);
		expect(rejection(open(plain, { query: { nonce: { a: '1' } } })).status).toBe(400);
		expect(rejection(open(safe, { query: { msg_signature: [safe.query.msg_signature, 'x'] } })).status).toBe(400);
		expect(rejection(open(safe, { query: { encrypt_type: ['aes', 'aes'] } })).status).toBe(400);
		// Parameters the pipeline does not read may repeat.
		expect(open(plain, { query: { openid: ['a', 'b'] } }).ok).toBe(true);
	});

	it('unknown encrypt_type → 400', () => {
		const safe = push('safe');
		for (const encryptType of ['des', 'AES', '']) {
			expect(rejection(open(safe, { query: { encrypt_type: encryptType } }))).toEqual({
				status: 400,
				reason: 'Unsupported encrypt_type',
			});
		}
	});

	it('unexpected failures become 400, never an exception', () => {
		const failingClock = () => {
			throw new Error('clock broke');
		};
		expect(rejection(open(push('plaintext'), { config: { nowSeconds: failingClock } }))).toEqual({
			status: 400,
			reason: 'Request could not be processed',
		});
		expect(
			rejection(openWeChatPush({ query: null as unknown as WeChatQuery, rawBody: '' }, config())).status,
		).toBe(400);
	});
});

describe('compatible mode', () => {
	it('prefers the decrypted message over the unauthenticated plaintext copy', () => {
		const built = push('compatible');
		expect(parseWeChatXml(built.body)).toMatchObject({ FromUserName: OPEN_ID, Encrypt: built.encrypt });
		const forgedOuter = built.body.replace(`<![CDATA[${OPEN_ID}]]>`, '<![CDATA[oAttacker]]>').replace('qrscene_123123', 'qrscene_evil');
		expect(forgedOuter).not.toBe(built.body);
		const opened = accepted(open(built, { body: forgedOuter }));
		expect(opened.encrypted).toBe(true);
		expect(opened.message.FromUserName).toBe(OPEN_ID);
		expect(opened.message.EventKey).toBe('qrscene_123123');
		expect(opened.message.Encrypt).toBeUndefined();
	});

	it('replies encrypted to an encrypted push, plain to a plaintext push', () => {
		const encrypted = accepted(open(push('compatible')));
		const reply = buildPassiveReply(encrypted, 'hello', { nowSeconds: () => NOW });
		const openedReply = openEncryptedReply(reply, { token: TOKEN, appId: APP_ID, encodingAESKey: AES_KEY });
		expect(openedReply.signatureValid).toBe(true);
		expect(openedReply.fields).toEqual({
			ToUserName: OPEN_ID,
			FromUserName: ACCOUNT_ID,
			CreateTime: String(NOW),
			MsgType: 'text',
			Content: 'hello',
		});
		const plain = accepted(open(push('plaintext')));
		expect(buildPassiveReply(plain, 'hello', { nowSeconds: () => NOW })).toBe(
			buildTextReplyXml({ toUserName: OPEN_ID, fromUserName: ACCOUNT_ID, createTime: NOW, content: 'hello' }),
		);
		expect(buildPassiveReply(plain, '', { nowSeconds: () => NOW })).toBe('success');
		expect(buildPassiveReply(encrypted, '', { nowSeconds: () => NOW })).toBe('success');
	});
});

describe('key rotation', () => {
	const rotated = new WeChatCipher(OTHER_KEY, APP_ID, AES_KEY);

	it('decrypts with the previous key and seals the reply with that same key', () => {
		const opened = accepted(open(push('safe'), { config: { cipher: rotated } }));
		if (!opened.encrypted) throw new Error('expected an encrypted push');
		expect(opened.keySlot).toBe('previous');
		const reply = buildPassiveReply(opened, '旧密钥', { nowSeconds: () => NOW, random16: FIXED_RANDOM16, nonce: '42' });
		const withOldKey = openEncryptedReply(reply, { token: TOKEN, appId: APP_ID, encodingAESKey: AES_KEY });
		expect(withOldKey.signatureValid).toBe(true);
		expect(withOldKey.fields.Content).toBe('旧密钥');
		expect(parseWeChatXml(reply).Nonce).toBe('42');
		expect(() => openEncryptedReply(reply, { token: TOKEN, appId: APP_ID, encodingAESKey: OTHER_KEY })).toThrow(
			WeChatCryptoError,
		);
	});

	it('prefers the current key, and rejects a key that is neither', () => {
		const current = accepted(open(push('safe', { encodingAESKey: OTHER_KEY }), { config: { cipher: rotated } }));
		expect(current.encrypted && current.keySlot).toBe('current');
		expect(rejection(open(push('safe', { encodingAESKey: THIRD_KEY }), { config: { cipher: rotated } })).status).toBe(401);
		// Previous key, other AppID: the AppID diagnosis wins over the current key's padding failure.
		const otherApp = new WeChatCipher(OTHER_KEY, 'wx0000000000000000', AES_KEY);
		expect(rejection(open(push('safe'), { config: { cipher: otherApp } })).status).toBe(403);
		expect(rotated.encrypt('x', FIXED_RANDOM16, 'previous')).toBe(cipher.encrypt('x', FIXED_RANDOM16));
		expect(() => cipher.encrypt('x', FIXED_RANDOM16, 'previous')).toThrow(/previous/);
		expect(new WeChatCipher(AES_KEY, APP_ID, '').decryptWithKeyInfo(cipher.encrypt('x')).keySlot).toBe('current');
	});
});

describe('UTF-8', () => {
	const scene = '门店_42号🎉';

	it('scenes and replies in Chinese and emoji round-trip through every mode', () => {
		for (const mode of ['plaintext', 'compatible', 'safe'] as const) {
			const opened = accepted(open(push(mode, { scene })));
			const output = toScanEventOutput(opened.message);
			expect(output.scene).toBe(scene);
			expect(output.sceneId).toBeNull();
			const content = `欢迎光临 ${scene} 😀`;
			const reply = buildPassiveReply(opened, content, { nowSeconds: () => NOW });
			const fields = opened.encrypted
				? openEncryptedReply(reply, { token: TOKEN, appId: APP_ID, encodingAESKey: AES_KEY }).fields
				: parseWeChatXml(Buffer.from(reply, 'utf8'));
			expect(fields.Content).toBe(content);
		}
	});

	it('msgLen counts UTF-8 bytes, not characters', () => {
		const message = '<xml><Content><![CDATA[你好😀]]></Content></xml>';
		const plain = rawAes('decrypt', Buffer.from(cipher.encrypt(message, FIXED_RANDOM16), 'base64'));
		expect(plain.readUInt32BE(16)).toBe(Buffer.byteLength(message, 'utf8'));
		expect(Buffer.byteLength(message, 'utf8')).toBeGreaterThan(message.length);
		expect(cipher.decrypt(cipher.encrypt(message))).toBe(message);
	});
});

describe('XML', () => {
	it('splits ]]> safely across CDATA sections', () => {
		expect(cdata('a]]>b')).toBe('<![CDATA[a]]]]><![CDATA[>b]]>');
		for (const content of ['a]]>b', ']]>', ']]>]]>', 'x]]]>y', ']]]]>>', 'end]]', '<![CDATA[inner]]>']) {
			const xml = buildTextReplyXml({ toUserName: 'o]]>1', fromUserName: 'gh', createTime: 1, content });
			expect(parseWeChatXml(xml)).toMatchObject({ ToUserName: 'o]]>1', Content: content });
		}
	});

	it('builds the §5.4 text reply', () => {
		expect(buildTextReplyXml({ toUserName: 'toUser', fromUserName: 'fromUser', createTime: 12345678, content: '你好' })).toBe(
			'<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName>' +
				'<CreateTime>12345678</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>',
		);
		expect(() => buildTextReplyXml({ toUserName: 'a', fromUserName: 'b', createTime: 1.5, content: 'c' })).toThrow();
	});

	it('drops characters XML forbids even inside CDATA', () => {
		expect(cdata('a\u0000b\u0007c\td\ne\r')).toBe('<![CDATA[abc\td\ne\r]]>');
	});

	it('keeps names, case and leading zeros; skips nested elements; first of a repeated element wins', () => {
		const message = parseWeChatXml(
			'<?xml version="1.0" encoding="utf-8"?><!-- comment --><xml><SceneStr>007</SceneStr><msgType>Event</msgType>' +
				'<ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo><A>1</A><A>2</A><Empty/><Spaced> <![CDATA[ x ]]> </Spaced>' +
				'<Unknown attr="1">u</Unknown></xml>',
		);
		expect(message).toEqual({ SceneStr: '007', msgType: 'Event', A: '1', Empty: '', Spaced: ' x ', Unknown: 'u' });
		expect(parseWeChatXml('<xml></xml>')).toEqual({});
		expect(parseWeChatXml('\ufeff<xml><A>1</A></xml>')).toEqual({ A: '1' });
	});

	it('refuses what is not WeChat XML, with a reason', () => {
		const reasonOf = (raw: string, max?: number) => {
			try {
				parseWeChatXml(raw, max);
				return 'accepted';
			} catch (error) {
				expect(error).toBeInstanceOf(WeChatXmlError);
				return (error as WeChatXmlError).reason;
			}
		};
		expect(reasonOf('<xml>text</xml>')).toBe('not-wechat-xml');
		expect(reasonOf('<XML><A>1</A></XML>')).toBe('not-wechat-xml');
		expect(reasonOf('success')).toBe('malformed');
		expect(reasonOf('<xml><A>1</A></xml><xml></xml>')).toBe('malformed');
		expect(reasonOf('<xml><A>1</A></xml><xml/>')).toBe('not-wechat-xml');
		expect(reasonOf('<xml><__proto__>x</__proto__></xml>')).toBe('malformed');
		expect(reasonOf(`<xml>${'<a>'.repeat(40)}${'</a>'.repeat(40)}</xml>`)).toBe('malformed');
		expect(reasonOf('<xml><A>1</A></xml>', 10)).toBe('too-large');
		expect(reasonOf('<!DOCTYPE xml><xml/>')).toBe('doctype');
		expect(({}.constructor as unknown)).toBe(Object); // no prototype pollution from the attempts above
	});
});

describe('events', () => {
	it('classifies only scan-related events, case-insensitively', () => {
		const base = { MsgType: 'event', FromUserName: 'o', ToUserName: 'gh', CreateTime: '1' };
		expect(classifyEvent({ ...base, Event: 'Subscribe', EventKey: 'qrscene_1' })).toBe('subscribeScene');
		expect(classifyEvent({ ...base, Event: 'subscribe', EventKey: 'other' })).toBe('subscribe');
		expect(classifyEvent({ ...base, Event: 'scan', EventKey: '1' })).toBe('scan');
		expect(classifyEvent({ ...base, Event: 'unsubscribe' })).toBe('unsubscribe');
		expect(classifyEvent({ ...base, Event: 'LOCATION' })).toBeNull();
		expect(classifyEvent({ ...base, Event: 'CLICK', EventKey: 'menu' })).toBeNull();
		expect(classifyEvent({ ...base, MsgType: 'text', Content: 'subscribe', Event: 'subscribe' })).toBeNull();
		expect(classifyEvent({ Event: 'subscribe' })).toBeNull();
	});

	it('extracts scenes per §5.2', () => {
		expect(sceneFromEventKey('subscribe', 'qrscene_123')).toBe('123');
		expect(sceneFromEventKey('SUBSCRIBE', 'qrscene_')).toBe('');
		expect(sceneFromEventKey('SCAN', 'qrscene_123')).toBe('qrscene_123');
		expect(sceneFromEventKey('SCAN', undefined)).toBeNull();
		expect(sceneFromEventKey('unsubscribe', 'qrscene_1')).toBeNull();
		expect(sceneFromEventKey('CLICK', 'menu')).toBeNull();
		expect(sceneFromEventKey(undefined, 'qrscene_1')).toBeNull();
	});

	it('treats only canonical 32-bit unsigned integers as scene ids', () => {
		expect(sceneIdFromScene('123')).toBe(123);
		expect(sceneIdFromScene('0')).toBe(0);
		expect(sceneIdFromScene('4294967295')).toBe(4294967295);
		for (const scene of ['007', '4294967296', '99999999999', '', '-1', '1e3', ' 1', '1.0', 'store_42', null]) {
			expect(sceneIdFromScene(scene)).toBeNull();
		}
	});

	it('filters scenes exactly or by prefix', () => {
		expect(matchesSceneFilter(null, [])).toBe(true);
		expect(matchesSceneFilter('any', [])).toBe(true);
		expect(matchesSceneFilter(null, ['*'])).toBe(false);
		expect(matchesSceneFilter('', ['*'])).toBe(true);
		expect(matchesSceneFilter('store_42', ['store_*'])).toBe(true);
		expect(matchesSceneFilter('store_42', ['store_4'])).toBe(false);
		expect(matchesSceneFilter('store_42', ['other', 'store_42'])).toBe(true);
		expect(matchesSceneFilter('Store_42', ['store_*'])).toBe(false);
		expect(parseSceneFilters(' store_*, 123 ,\n,门店 ')).toEqual(['store_*', '123', '门店']);
		expect(parseSceneFilters('  ')).toEqual([]);
	});

	it('builds dedupe keys from MsgId, else sender + CreateTime + Event', () => {
		expect(dedupeKey({ MsgId: '1234567890123456', FromUserName: 'o', CreateTime: '1' })).toBe('msg:1234567890123456');
		const event = { FromUserName: 'o1', CreateTime: '100', Event: 'subscribe' };
		expect(dedupeKey(event)).toBe('event:o1:100:subscribe');
		expect(dedupeKey({ ...event, Event: 'SCAN' })).not.toBe(dedupeKey(event));
		expect(dedupeKey({ ...event, MsgId: '' })).toBe(dedupeKey(event));
	});

	it('remembers keys for the TTL, bounded, without timers', () => {
		let now = 0;
		const cache = new RecentEventCache({ maxEntries: 3, ttlMs: 60_000, now: () => now });
		expect(cache.seen('a')).toBe(false);
		expect(cache.seen('a')).toBe(true);
		now = 59_999;
		expect(cache.seen('a')).toBe(true);
		now = 60_000;
		expect(cache.seen('a')).toBe(false); // expired, recorded again
		expect(cache.seen('a')).toBe(true);
		for (const key of ['b', 'c', 'd']) expect(cache.seen(key)).toBe(false);
		expect(cache.size).toBe(3);
		expect(cache.seen('a')).toBe(false); // evicted as the oldest
		now = 200_000;
		expect(cache.seen('e')).toBe(false);
		expect(cache.size).toBe(1); // everything else expired lazily
	});

	it('forgets a key on request, and the stale recording of a forgotten key never evicts its new one', () => {
		let now = 0;
		const cache = new RecentEventCache({ maxEntries: 2, ttlMs: 60_000, now: () => now });
		expect(cache.seen('a')).toBe(false);
		cache.forget('a');
		expect(cache.size).toBe(0);
		now = 1_000;
		expect(cache.seen('a')).toBe(false); // new again, recorded at 1 s
		expect(cache.seen('b')).toBe(false);
		now = 60_500; // the forgotten recording (0 s) has expired; the new one (1 s) has not
		expect(cache.seen('a')).toBe(true);
		cache.forget('missing');
		expect(cache.size).toBe(2);
	});

	it('keeps many keys cheaply', () => {
		const cache = new RecentEventCache();
		for (let i = 0; i < 20_000; i++) cache.seen(`k${i}`);
		expect(cache.size).toBe(10_000);
		expect(cache.seen('k19999')).toBe(true);
		expect(cache.seen('k0')).toBe(false);
	});

	it('keeps the first value of a key, and its retention time only grows', () => {
		let now = 0;
		const memory = new RecentKeys({ ttlMs: 60_000, now: () => now });
		expect(memory.recordFirst('q', 1)).toBeUndefined();
		expect(memory.recordFirst('q', 2)).toBe(1);
		memory.retainAtLeast(600_000);
		memory.retainAtLeast(10_000);
		now = 599_999;
		expect(memory.recordFirst('q', 3)).toBe(1);
		now = 600_000;
		expect(memory.recordFirst('q', 4)).toBeUndefined();
		expect(memory.isEmpty()).toBe(false);
	});

	it('fingerprints keys in 53 bits, the same every time', () => {
		const prints = Array.from({ length: 20_000 }, (_, i) => keyFingerprint(`1714037059:${i}`));
		expect(new Set(prints).size).toBe(prints.length);
		for (const print of prints) expect(Number.isSafeInteger(print) && print >= 0).toBe(true);
		expect(keyFingerprint('1714037059:0')).toBe(prints[0]);
		expect(keyFingerprint('')).not.toBe(keyFingerprint('\u0000'));
	});

	it('answers like a plain list of recordings, through growth, eviction, expiry and forgetting', () => {
		// The model: every recording in order; the latest of a key counts unless forgotten, expired or evicted.
		type Recording = { key: string; value: number; at: number; live: boolean };
		const operation = fc.oneof(
			fc.record({ kind: fc.constant('record' as const), key: fc.integer({ min: 0, max: 1_500 }) }),
			fc.record({ kind: fc.constant('forget' as const), key: fc.integer({ min: 0, max: 1_500 }) }),
			fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 100 }) }),
		);
		fc.assert(
			fc.property(fc.integer({ min: 1, max: 4_000 }), fc.array(operation, { minLength: 2_000, maxLength: 8_000 }), (maxEntries, operations) => {
				let now = 0;
				const memory = new RecentKeys({ maxEntries, ttlMs: 60_000, now: () => now });
				const recordings: Recording[] = [];
				const latest = new Map<string, Recording>();
				const expire = () => {
					while (recordings.length > 0 && (!recordings[0].live || now - recordings[0].at >= 60_000)) {
						const dropped = recordings.shift() as Recording;
						if (dropped.live) latest.delete(dropped.key);
						dropped.live = false;
					}
				};
				operations.forEach((op, value) => {
					if (op.kind === 'wait') {
						now += op.ms;
						return;
					}
					const key = `k${op.key}`;
					const current = latest.get(key);
					if (op.kind === 'forget') {
						memory.forget(key);
						if (current) current.live = false;
						latest.delete(key);
						return;
					}
					expire();
					let expected: number | undefined;
					if (current && now - current.at < 60_000) expected = current.value;
					else {
						if (current) current.live = false;
						if (recordings.length >= maxEntries) {
							const evicted = recordings.shift() as Recording;
							if (evicted.live && latest.get(evicted.key) === evicted) latest.delete(evicted.key);
							evicted.live = false;
						}
						const recording = { key, value, at: now, live: true };
						recordings.push(recording);
						latest.set(key, recording);
					}
					expect(memory.recordFirst(key, value)).toBe(expected);
					expect(memory.size).toBe(latest.size);
				});
			}),
			{ numRuns: 60 },
		);
	});

	it('remembers pushes for as long as a copy could pass the timestamp check', () => {
		expect(replayRetentionMs(300)).toBe(601_000);
		expect(replayRetentionMs(3_600)).toBe(7_201_000);
		expect(replayRetentionMs(5)).toBe(60_000); // WeChat's own re-sends still count as such
		expect(replayRetentionMs(0)).toBe(60_000); // the check is off: copies are recognised for 60 s only
		expect(replayRetentionMs(Number.NaN)).toBe(60_000);
	});

	it('accepts a signed query again only as a copy of its push: the same event to the same trigger', () => {
		const memory = new RecentKeys();
		const plain = { timestamp: '1714037059', nonce: '486452656', encrypted: false };
		const use = { triggerId: 'wf:a', eventKey: 'event:o1:100:SCAN' };
		const otherEvent = { ...use, eventKey: 'event:o2:100:SCAN' };
		expect(checkSignedQuery(memory, plain, use)).toEqual({ ok: true, repeated: false });
		expect(checkSignedQuery(memory, plain, use)).toEqual({ ok: true, repeated: true });
		expect(checkSignedQuery(memory, plain, otherEvent)).toEqual({ ok: false, reason: 'This signature was already used for another push' });
		expect(checkSignedQuery(memory, { ...plain, encrypted: true }, otherEvent)).toEqual({ ok: true, repeated: false });
		for (const encrypted of [false, true]) {
			expect(checkSignedQuery(memory, { ...plain, encrypted }, { ...use, triggerId: 'wf:b' })).toEqual({
				ok: false,
				reason: 'This signed push was already delivered to another trigger',
			});
		}
		expect(checkSignedQuery(memory, { ...plain, nonce: '486452657' }, { ...use, triggerId: 'wf:b' })).toEqual({ ok: true, repeated: false });
		expect(signedQueryKey(plain)).toBe('1714037059:486452656');
	});

	it('tells what n8n answered a delivery, and keeps unanswered deliveries for re-sends, bounded in time', async () => {
		const storing = { statusCode: 200, writableEnded: false };
		expect(deliveryState(storing)).toBe('storing');
		expect(deliveryState({ statusCode: 200, writableEnded: true })).toBe('stored');
		expect(deliveryState({ statusCode: 500, writableEnded: true })).toBe('refused');
		expect(await settledDelivery(storing, 120)).toBe('storing');
		setTimeout(() => Object.assign(storing, { statusCode: 500, writableEnded: true }), 60);
		expect(await settledDelivery(storing, 2_000)).toBe('refused');

		let now = 0;
		const deliveries = new UnansweredDeliveries(() => now);
		const first = { statusCode: 200, writableEnded: false };
		const resent = { statusCode: 200, writableEnded: false };
		deliveries.add('a', first);
		deliveries.add('a', resent); // a re-send took the place of the first delivery
		expect(deliveries.answered('a', first)).toBe(false);
		expect(deliveries.get('a')).toBe(resent);
		expect(deliveries.answered('a', resent)).toBe(true);
		expect(deliveries.size).toBe(0);
		expect(deliveries.answered('a', resent)).toBe(true); // already gone: nothing took its place
		deliveries.add('b', first);
		now = 29_999;
		deliveries.add('c', resent);
		expect(deliveries.size).toBe(2);
		now = 30_000;
		deliveries.add('d', resent);
		expect(deliveries.get('b')).toBeUndefined(); // WeChat hung up and sent nothing again: dropped
		expect(deliveries.size).toBe(2);
	});
});

describe('properties', () => {
	it('encrypt → decrypt round-trips any Unicode string', () => {
		fc.assert(
			fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (message, random) => {
				const encrypt = cipher.encrypt(message, Buffer.from(random));
				expect(Buffer.from(encrypt, 'base64').length % 32).toBe(0);
				expect(cipher.decrypt(encrypt)).toBe(message);
			}),
			{ numRuns: 1000 },
		);
	});

	it('text replies round-trip any Unicode content through build → parse', () => {
		fc.assert(
			fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (content) => {
				// Forbidden characters are dropped; XML parsers normalise CR and CRLF to LF.
				const clean = content
					// eslint-disable-next-line no-control-regex -- exactly the characters XML 1.0 forbids
					.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
					.replace(/\r\n?/g, '\n');
				const xml = buildTextReplyXml({ toUserName: 'o', fromUserName: 'gh', createTime: 1, content });
				expect(parseWeChatXml(xml).Content).toBe(clean);
			}),
			{ numRuns: 1000 },
		);
	});

	it('signature checks never throw and accept only the right value', () => {
		fc.assert(
			fc.property(fc.string({ unit: 'binary' }), fc.string(), fc.string(), fc.string({ unit: 'binary' }), (token, timestamp, nonce, signature) => {
				const expected = weChatSignature([token, timestamp, nonce]);
				expect(verifySignature(token, timestamp, nonce, signature)).toBe(signature === expected);
				expect(verifySignature(token, timestamp, nonce, expected)).toBe(true);
				expect(verifyMsgSignature(token, timestamp, nonce, signature, signature)).toBe(
					signature === weChatSignature([token, timestamp, nonce, signature]),
				);
			}),
			{ numRuns: 500 },
		);
	});

	const queryValue = fc.oneof(
		fc.constant(undefined),
		fc.string(),
		fc.array(fc.string(), { maxLength: 3 }),
		fc.constantFrom(String(NOW), 'aes', 'raw', '415670741'),
		fc.anything(),
	);
	const arbitraryQuery = fc.record(
		{
			signature: queryValue,
			timestamp: queryValue,
			nonce: queryValue,
			encrypt_type: queryValue,
			msg_signature: queryValue,
			openid: queryValue,
		},
		{ requiredKeys: [] },
	);
	const arbitraryBody = fc.oneof(
		fc.constant(undefined),
		fc.string({ unit: 'binary', maxLength: 400 }),
		fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
		fc.dictionary(fc.constantFrom('ToUserName', 'Encrypt', 'Event', 'x', 'xml'), fc.string({ maxLength: 60 })).map((fields) =>
			buildWeChatXml(fields),
		),
		fc.constantFrom(push('safe').body, push('compatible').body, push('plaintext').body, '<!DOCTYPE x><xml/>'),
	);
	const arbitraryConfig = fc.record({
		cipher: fc.constantFrom(cipher, undefined, new WeChatCipher(OTHER_KEY, APP_ID, AES_KEY)),
		requireEncryption: fc.boolean(),
		timestampToleranceSeconds: fc.constantFrom(0, 300),
		maxBodyBytes: fc.constantFrom(64, 64 * 1024),
	});

	function expectDefinedOutcome(opened: OpenedPush): void {
		expect(opened).toBeDefined();
		if (opened.ok) {
			expect(typeof opened.message).toBe('object');
			return;
		}
		expect([400, 401, 403, 413]).toContain(opened.status);
		expect(opened.reason.length).toBeGreaterThan(0);
		expect(opened.reason).not.toContain(TOKEN);
		expect(opened.reason).not.toContain(AES_KEY.slice(0, 10));
	}

	it('openWeChatPush never throws for arbitrary queries and bodies', () => {
		fc.assert(
			fc.property(arbitraryQuery, arbitraryBody, arbitraryConfig, (query, rawBody, overrides) => {
				expectDefinedOutcome(openWeChatPush({ query: query as WeChatQuery, rawBody }, config(overrides)));
			}),
			{ numRuns: 2000 },
		);
		fc.assert(
			fc.property(fc.anything(), fc.anything(), (query, rawBody) => {
				expectDefinedOutcome(
					openWeChatPush({ query: query as WeChatQuery, rawBody: rawBody as string }, config()),
				);
			}),
			{ numRuns: 500 },
		);
	});

	it('openWeChatPush never throws for correctly signed pushes with arbitrary bodies or Encrypt values', () => {
		const plainQuery = push('plaintext').query;
		fc.assert(
			fc.property(arbitraryBody, arbitraryConfig, (rawBody, overrides) => {
				expectDefinedOutcome(openWeChatPush({ query: plainQuery, rawBody }, config(overrides)));
			}),
			{ numRuns: 1000 },
		);
		const encryptValue = fc.oneof(
			fc.string({ maxLength: 200 }),
			fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('base64')),
			fc.string({ unit: 'binary', maxLength: 100 }).map((message) => cipher.encrypt(message)),
		);
		fc.assert(
			fc.property(encryptValue, arbitraryConfig, (encrypt, overrides) => {
				const opened = openWeChatPush(
					{ query: signedAesQuery(encrypt), rawBody: safeBody(encrypt) },
					config({ ...overrides, maxBodyBytes: 64 * 1024 }),
				);
				expectDefinedOutcome(opened);
				if (!opened.ok && opened.status === 401) expect(opened.reason).toMatch(/could not be decrypted/);
			}),
			{ numRuns: 1000 },
		);
	});
});
