/**
 * The simulator's push sender against a tiny endpoint built on the trigger's own pipeline
 * (openWeChatPush / verifyUrlRequest): what WeChat would send must pass, in every mode.
 */
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeChatCipher } from '../nodes/WeChatScanTrigger/helpers/crypto';
import { toScanEventOutput } from '../nodes/WeChatScanTrigger/helpers/events';
import type { ScanEventOutput } from '../nodes/WeChatScanTrigger/helpers/events';
import { buildPassiveReply, openWeChatPush, verifyUrlRequest } from '../nodes/WeChatScanTrigger/helpers/request';
import { parseWeChatXml } from '../nodes/WeChatScanTrigger/helpers/xml';
import { buildScanPush, openEncryptedReply, sendScanPush, sendUrlVerification } from './simulator/push';
import type { PushMode } from './simulator/push';

const TOKEN = 'dummyToken42';
const APP_ID = 'wx5imulat0r0000001';
const AES_KEY = 'dummySimulatorKey0123456789abcdefghijklmnop';
const MODES: readonly PushMode[] = ['plaintext', 'compatible', 'safe'];

interface Received {
	method: string;
	contentType: string | undefined;
	query: Record<string, string | string[]>;
	output?: ScanEventOutput;
	encrypted?: boolean;
}

const received: Received[] = [];
let server: http.Server;
let url: string;

function queryOf(requestUrl: string): Record<string, string | string[]> {
	const query: Record<string, string | string[]> = {};
	new URL(requestUrl, 'http://127.0.0.1').searchParams.forEach((value, name) => {
		const previous = query[name];
		query[name] = previous === undefined ? value : ([] as string[]).concat(previous, value);
	});
	return query;
}

function handle(req: http.IncomingMessage, res: http.ServerResponse, rawBody: Buffer): void {
	const query = queryOf(req.url ?? '/');
	const record: Received = { method: req.method ?? '', contentType: req.headers['content-type'], query };
	received.push(record);
	const nowSeconds = () => Math.floor(Date.now() / 1000);
	if (req.method === 'GET') {
		const verified = verifyUrlRequest(query, TOKEN, 300, nowSeconds);
		res.writeHead(verified.ok ? 200 : verified.status, { 'Content-Type': 'text/plain' });
		res.end(verified.ok ? verified.echostr : verified.reason);
		return;
	}
	const opened = openWeChatPush(
		{ query, rawBody },
		{
			token: TOKEN,
			appId: APP_ID,
			cipher: new WeChatCipher(AES_KEY, APP_ID),
			requireEncryption: false,
			timestampToleranceSeconds: 300,
			maxBodyBytes: 64 * 1024,
			nowSeconds,
		},
	);
	if (!opened.ok) {
		res.writeHead(opened.status, { 'Content-Type': 'text/plain' });
		res.end(opened.reason);
		return;
	}
	record.output = toScanEventOutput(opened.message);
	record.encrypted = opened.encrypted;
	res.writeHead(200, { 'Content-Type': 'application/xml' });
	res.end(buildPassiveReply(opened, `scene:${record.output.scene ?? '-'}`, { nowSeconds }));
}

beforeAll(async () => {
	server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => handle(req, res, Buffer.concat(chunks)));
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook/wechat-scan`;
});

afterAll(async () => {
	server.closeAllConnections();
	await new Promise<void>((resolve) => server.close(() => resolve()));
});

function lastReceived(): Received {
	const last = received[received.length - 1];
	if (last === undefined) throw new Error('nothing received');
	return last;
}

describe('sendScanPush', () => {
	it.each(MODES)('%s: a QR follow arrives verified with its scene, and the reply decodes', async (mode) => {
		const response = await sendScanPush(url, {
			token: TOKEN,
			appId: APP_ID,
			encodingAESKey: AES_KEY,
			mode,
			event: 'subscribe',
			scene: 'store_42',
			openId: 'oSimulatedUser0000000000001',
		});
		expect(response.status).toBe(200);
		const seen = lastReceived();
		expect(seen.method).toBe('POST');
		expect(seen.contentType).toBe('text/xml');
		expect(seen.query.openid).toBe('oSimulatedUser0000000000001');
		expect(seen.query.encrypt_type).toBe(mode === 'plaintext' ? undefined : 'aes');
		expect(seen.encrypted).toBe(mode !== 'plaintext');
		expect(seen.output).toMatchObject({
			event: 'subscribe',
			isNewFollower: true,
			openId: 'oSimulatedUser0000000000001',
			scene: 'store_42',
			sceneId: null,
			ticket: response.push.fields.Ticket,
		});
		expect(seen.output?.accountId).toMatch(/^gh_[0-9a-f]{12}$/);
		expect(seen.output?.ticket).toMatch(/\+.*\/|\/.*\+/);

		const reply =
			mode === 'plaintext'
				? parseWeChatXml(response.body)
				: openEncryptedReply(response.body, { token: TOKEN, appId: APP_ID, encodingAESKey: AES_KEY }).fields;
		expect(reply).toMatchObject({
			ToUserName: 'oSimulatedUser0000000000001',
			FromUserName: seen.output?.accountId,
			MsgType: 'text',
			Content: 'scene:store_42',
		});
		if (mode !== 'plaintext') {
			expect(openEncryptedReply(response.body, { token: TOKEN, appId: APP_ID, encodingAESKey: AES_KEY }).signatureValid).toBe(
				true,
			);
		}
	});

	it.each(MODES)('%s: SCAN carries the bare scene, unsubscribe none', async (mode) => {
		const options = { token: TOKEN, appId: APP_ID, encodingAESKey: AES_KEY, mode };
		expect((await sendScanPush(url, { ...options, event: 'SCAN', scene: '123' })).status).toBe(200);
		expect(lastReceived().output).toMatchObject({ event: 'SCAN', isNewFollower: false, scene: '123', sceneId: 123 });
		expect((await sendScanPush(url, { ...options, event: 'unsubscribe' })).status).toBe(200);
		expect(lastReceived().output).toMatchObject({ event: 'unsubscribe', scene: null, ticket: null });
	});

	it('lays out the body like WeChat in each mode', () => {
		const options = {
			token: TOKEN,
			appId: APP_ID,
			encodingAESKey: AES_KEY,
			event: 'subscribe',
			scene: '7',
			accountId: 'gh_0123456789ab',
			extraFields: { Custom: 'x' },
		};
		const plain = parseWeChatXml(buildScanPush({ ...options, mode: 'plaintext' }).body);
		expect(Object.keys(plain)).toEqual(['ToUserName', 'FromUserName', 'CreateTime', 'MsgType', 'Event', 'EventKey', 'Ticket', 'Custom']);
		expect(plain.EventKey).toBe('qrscene_7');
		const safe = buildScanPush({ ...options, mode: 'safe' });
		expect(Object.keys(parseWeChatXml(safe.body))).toEqual(['ToUserName', 'Encrypt']);
		expect(safe.body).toMatch(/^<xml><ToUserName><!\[CDATA\[gh_0123456789ab\]\]><\/ToUserName><Encrypt><!\[CDATA\[/);
		const compatible = parseWeChatXml(buildScanPush({ ...options, mode: 'compatible' }).body);
		expect(Object.keys(compatible)).toEqual([...Object.keys(plain), 'Encrypt']);
		expect(() => buildScanPush({ ...options, mode: 'safe', encodingAESKey: undefined })).toThrow(/appId and encodingAESKey/);
	});

	it('is rejected by the endpoint when signed with the wrong token or key', async () => {
		const wrongToken = await sendScanPush(url, { token: 'wrong', appId: APP_ID, encodingAESKey: AES_KEY, mode: 'safe', event: 'SCAN', scene: '1' });
		expect(wrongToken.status).toBe(401);
		expect(wrongToken.body).toBe('Invalid msg_signature');
		const wrongKey = await sendScanPush(url, {
			token: TOKEN,
			appId: APP_ID,
			encodingAESKey: 'Z'.repeat(43),
			mode: 'safe',
			event: 'SCAN',
			scene: '1',
		});
		expect(wrongKey.status).toBe(401);
		const stale = await sendScanPush(url, { token: TOKEN, mode: 'plaintext', event: 'SCAN', timestamp: 1_000_000_000 });
		expect(stale.status).toBe(403);
	});
});

describe('sendUrlVerification', () => {
	it('gets echostr echoed with the right token', async () => {
		const response = await sendUrlVerification(url, { token: TOKEN, echostr: '4375120948345356249' });
		expect(response.status).toBe(200);
		expect(response.body).toBe('4375120948345356249');
		expect(lastReceived().method).toBe('GET');
		const random = await sendUrlVerification(url, { token: TOKEN });
		expect(random.body).toBe(random.echostr);
		expect(random.echostr).toMatch(/^\d+$/);
	});

	it('is refused with the wrong token', async () => {
		const response = await sendUrlVerification(url, { token: 'wrong', echostr: '1' });
		expect(response.status).toBe(401);
		expect(response.body).not.toBe('1');
	});
});

describe('push-cli', () => {
	const run = promisify(execFile);
	const root = path.resolve(__dirname, '..');
	const cli = ['--import', 'tsx', path.join(root, 'test/simulator/push-cli.ts')];

	it('sends a safe-mode push and prints the status and the decrypted reply', async () => {
		const { stdout } = await run(
			process.execPath,
			[...cli, '--url', url, '--token', TOKEN, '--app-id', APP_ID, '--aes-key', AES_KEY, '--event', 'SCAN', '--scene', '门店_9'],
			{ cwd: root, timeout: 20_000 },
		);
		expect(stdout).toContain('HTTP 200');
		expect(stdout).toContain('MsgSignature valid');
		expect(stdout).toContain('<Content><![CDATA[scene:门店_9]]></Content>');
		expect(lastReceived().query.encrypt_type).toBe('aes');
	});

	it('runs the URL verification', async () => {
		const { stdout } = await run(process.execPath, [...cli, '--url', url, '--token', TOKEN, '--verify', '--echostr', '99'], {
			cwd: root,
			timeout: 20_000,
		});
		expect(stdout).toContain('HTTP 200');
		expect(stdout).toContain('URL verification passed');
	});
});
