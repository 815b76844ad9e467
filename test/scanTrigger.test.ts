import { randomBytes } from 'node:crypto';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { buildScanPush, openEncryptedReply, sendScanPush, sendUrlVerification, type ScanPushOptions } from './simulator/push';
import { CredentialStore, loggedLines } from './helpers/n8nHarness';
import { readOutputSchema, schemaMismatches } from './helpers/outputSchema';
import { createTrigger, inMemoryResponse, startTriggerServer, type TriggerServer } from './helpers/webhookHarness';
import { parseWeChatXml } from '../nodes/WeChatScanTrigger/helpers/xml';
import { CREDENTIAL_REUSE_MS } from '../nodes/WeChatScanTrigger/helpers/triggerState';
import { RESEND_WAIT_MS } from '../nodes/WeChatScanTrigger/helpers/deliveries';

const APP_ID = 'wx8c0ffee0ddba11';
const SERVER_TOKEN = ['campaign', 'Token', '2026'].join('');

function randomAesKey(): string {
	return randomBytes(40).toString('base64').replace(/[^A-Za-z0-9]/g, '').padEnd(43, 'A').slice(0, 43);
}

const AES_KEY = randomAesKey();
const servers: TriggerServer[] = [];

afterEach(async () => {
	for (const server of servers.splice(0)) {
		expect(server.thrownErrors).toEqual([]);
		expect(server.unanswered).toBe(0);
		await server.close();
	}
});

async function trigger(parameters: Record<string, unknown> = {}, data: Record<string, string> = {}): Promise<TriggerServer> {
	const store = new CredentialStore();
	const credential = store.add('cred', 'weChatOfficialAccountApi', {
		appId: APP_ID,
		appSecret: 'unused-here',
		token: SERVER_TOKEN,
		encodingAESKey: AES_KEY,
		...data,
	});
	const server = await startTriggerServer({ store, credential, parameters: parameters as never });
	servers.push(server);
	return server;
}

const push = (options: Partial<ScanPushOptions>): ScanPushOptions => ({
	token: SERVER_TOKEN,
	appId: APP_ID,
	encodingAESKey: AES_KEY,
	mode: 'plaintext',
	event: 'subscribe',
	...options,
});

async function postRaw(url: string, query: Record<string, string>, body: string | Buffer) {
	const target = new URL(url);
	for (const [key, value] of Object.entries(query)) target.searchParams.set(key, value);
	const response = await fetch(target, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body, signal: AbortSignal.timeout(10_000) });
	return { status: response.status, body: await response.text() };
}

describe('URL verification (GET)', () => {
	it('echoes echostr as text/plain for a valid signature and starts nothing', async () => {
		const server = await trigger();
		const response = await sendUrlVerification(server.url, { token: SERVER_TOKEN, echostr: '4375120948345356249' });
		expect(response.status).toBe(200);
		expect(response.body).toBe('4375120948345356249');
		expect(response.headers['content-type']).toMatch(/^text\/plain/);
		expect(server.executions).toHaveLength(0);
	});

	it('ignores spaces pasted around the Token in the credential', async () => {
		const server = await trigger({}, { token: ` ${SERVER_TOKEN}\n` });
		const response = await sendUrlVerification(server.url, { token: SERVER_TOKEN, echostr: '42' });
		expect(response.status).toBe(200);
		expect(response.body).toBe('42');
		const scan = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 'trimmed' }));
		expect(scan.status).toBe(200);
		expect(server.executions).toHaveLength(1);
	});

	it('refuses a wrong signature without echoing', async () => {
		const server = await trigger();
		const response = await sendUrlVerification(server.url, { token: 'someOtherToken', echostr: '123' });
		expect(response.status).toBe(401);
		expect(response.body).not.toContain('123');
	});
});

describe('scan events', () => {
	it.each(['plaintext', 'compatible', 'safe'] as const)('outputs a new follower with the scene, prefix removed (%s mode)', async (mode) => {
		const server = await trigger();
		const response = await sendScanPush(server.url, push({ mode, event: 'subscribe', scene: 'store_42', openId: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY', accountId: 'gh_97417a04a28d', ticket: 'TICKET+/=', createTime: 1714112445 }));
		expect(response.status).toBe(200);
		expect(response.body).toBe('success');
		expect(response.headers['content-type']).toMatch(/^text\/plain/);
		expect(server.executions).toHaveLength(1);
		const [item] = server.executions[0];
		expect(item.json).toEqual({
			event: 'subscribe',
			isNewFollower: true,
			openId: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY',
			accountId: 'gh_97417a04a28d',
			scene: 'store_42',
			sceneId: null,
			ticket: 'TICKET+/=',
			createTime: 1714112445,
			message: {
				ToUserName: 'gh_97417a04a28d',
				FromUserName: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY',
				CreateTime: '1714112445',
				MsgType: 'event',
				Event: 'subscribe',
				EventKey: ['qrscene', 'store_42'].join('_'),
				Ticket: 'TICKET+/=',
			},
		});
	});

	it('outputs an existing follower scan with a numeric scene as sceneId', async () => {
		const server = await trigger();
		await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: '123123' }));
		const [item] = server.executions[0];
		expect(item.json).toMatchObject({ event: 'SCAN', isNewFollower: false, scene: '123123', sceneId: 123123 });
	});

	it('keeps UTF-8 scenes intact', async () => {
		const server = await trigger();
		await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: '上海门店-海报🎉' }));
		expect(server.executions[0][0].json.scene).toBe('上海门店-海报🎉');
	});

	it('takes a declaration-like text inside CDATA as text: a scene "<!ENTITY promo>" starts its execution, a follower\'s "<!doctype html>" gets success', async () => {
		const server = await trigger();
		const scan = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: '<!ENTITY promo>' }));
		expect(scan.status).toBe(200);
		expect(server.executions).toHaveLength(1);
		expect(server.executions[0][0].json.scene).toBe('<!ENTITY promo>');

		const text = await sendScanPush(server.url, push({ mode: 'plaintext', event: '', extraFields: { MsgType: 'text', Content: '<!doctype html>' } }));
		expect(text.status).toBe(200);
		expect(text.body).toBe('success');
		expect(server.executions).toHaveLength(1);
	});

	it('starts nothing for events outside the selection, but still answers success', async () => {
		const server = await trigger();
		for (const event of ['subscribe', 'unsubscribe', 'LOCATION']) {
			const response = await sendScanPush(server.url, push({ event }));
			expect(response.status).toBe(200);
			expect(response.body).toBe('success');
		}
		expect(server.executions).toHaveLength(0);
	});

	it('can fire on plain follows and unfollows when selected', async () => {
		const server = await trigger({ events: ['subscribe', 'unsubscribe'] });
		await sendScanPush(server.url, push({ event: 'subscribe' }));
		await sendScanPush(server.url, push({ event: 'unsubscribe' }));
		await sendScanPush(server.url, push({ event: 'subscribe', scene: 'store_1' }));
		expect(server.executions.map(([item]) => [item.json.event, item.json.scene])).toEqual([
			['subscribe', null],
			['unsubscribe', null],
		]);
	});

	it('filters scenes by exact value and prefix', async () => {
		const server = await trigger({ sceneFilter: 'store_*, poster_spring' });
		for (const scene of ['store_1', 'poster_spring', 'poster_summer', 'stor', 'store_42']) {
			const response = await sendScanPush(server.url, push({ event: 'SCAN', scene }));
			expect(response.body).toBe('success');
		}
		expect(server.executions.map(([item]) => item.json.scene)).toEqual(['store_1', 'poster_spring', 'store_42']);
	});

	it('answers every WeChat retry but executes the event once', async () => {
		const server = await trigger();
		const first = buildScanPush(push({ mode: 'safe', event: 'SCAN', scene: 'retry_me' }));
		for (let delivery = 0; delivery < 4; delivery++) {
			const response = await postRaw(server.url, first.query, first.body);
			expect(response).toEqual({ status: 200, body: 'success' });
		}
		// A different event of the same user (another CreateTime) is not a retry.
		await sendScanPush(server.url, push({ event: 'SCAN', scene: 'retry_me', openId: String(first.fields.FromUserName), createTime: Number(first.fields.CreateTime) + 1 }));
		expect(server.executions).toHaveLength(2);
	});

	it('executes a push n8n could not store when WeChat sends it again, and only once', async () => {
		const store = new CredentialStore();
		const credential = store.add('cred', 'weChatOfficialAccountApi', { appId: APP_ID, appSecret: 'unused-here', token: SERVER_TOKEN, encodingAESKey: AES_KEY });
		const trigger = createTrigger({ store, credential, parameters: { options: { replyText: 'Hi {scene}' } } });
		const built = buildScanPush(push({ mode: 'safe', event: 'subscribe', scene: 'db_was_down' }));
		const request = { method: 'POST' as const, query: built.query, rawBody: Buffer.from(built.body) };

		// n8n failed to store the execution and answered an error: WeChat saw no success and will re-send.
		const failed = await trigger.invoke(request, undefined, { storeFails: true });
		expect(failed.status).toBe(500);
		expect(failed.execution).toBeUndefined();

		const resent = await trigger.invoke(request);
		expect(resent.status).toBe(200);
		expect(openEncryptedReply(resent.body, { token: SERVER_TOKEN, appId: APP_ID, encodingAESKey: AES_KEY }).fields.Content).toBe('Hi db_was_down');
		expect(resent.execution?.[0].json).toMatchObject({ scene: 'db_was_down', event: 'subscribe' });

		// Stored now: a further re-send gets the same answer and starts nothing.
		const again = await trigger.invoke(request);
		expect(again.status).toBe(200);
		expect(again.execution).toBeUndefined();
	});
});

// WeChat hangs up after 5 s without an answer and sends the push again, possibly while n8n is still
// storing the execution of the first delivery (a slow database). n8n answers that first delivery later,
// into the closed connection.
describe('many trigger nodes in one process', () => {
	it('a re-send to a busy trigger starts no second execution, however many other triggers the process serves', async () => {
		const store = new CredentialStore();
		const credential = store.add('cred', 'weChatOfficialAccountApi', { appId: APP_ID, appSecret: 'unused-here', token: SERVER_TOKEN, encodingAESKey: AES_KEY });
		const request = (openId: string, scene: string) => {
			const built = buildScanPush(push({ event: 'SCAN', scene, openId }));
			return { method: 'POST' as const, query: built.query, rawBody: Buffer.from(built.body) };
		};
		const busy = createTrigger({ store, credential, nodeId: 'busy-trigger' });
		const first = request('o_busy_user', 'busy');
		expect((await busy.invoke(first)).execution).toHaveLength(1);
		// 300 other WeChat Scan Trigger nodes (other workflows or accounts) get one push each.
		for (let i = 0; i < 300; i++) {
			const other = createTrigger({ store, credential, nodeId: `other-trigger-${i}` });
			expect((await other.invoke(request(`o_user_${i}`, `s${i}`))).status).toBe(200);
		}
		const resent = await busy.invoke(first);
		expect(resent.status).toBe(200);
		expect(resent.execution).toBeUndefined();
	});
});

// A push's query holds its signature, so it can be captured from the network or a proxy's access log and
// sent again while its timestamp is inside the window (300 s by default on either side of the clock).
describe('copies of accepted pushes', () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	const triggerNode = (nodeId: string, parameters: Record<string, unknown> = {}) => {
		const store = new CredentialStore();
		const credential = store.add('cred', 'weChatOfficialAccountApi', { appId: APP_ID, appSecret: 'unused-here', token: SERVER_TOKEN, encodingAESKey: AES_KEY });
		return createTrigger({ store, credential, nodeId, parameters: parameters as never });
	};
	const asRequest = (built: { query: Record<string, string>; body: string }, body: string = built.body) => ({
		method: 'POST' as const,
		query: built.query,
		rawBody: Buffer.from(body),
	});

	it.each(['plaintext', 'safe'] as const)('a copy sent minutes later, inside the timestamp window, gets the answer and starts nothing (%s mode)', async (mode) => {
		vi.useFakeTimers({ toFake: ['Date'] });
		const signedAt = 1_760_000_000;
		vi.setSystemTime(signedAt * 1000);
		const node = triggerNode(`copy-later-${mode}`, { options: { timestampToleranceSeconds: 900 } });
		const request = asRequest(buildScanPush(push({ mode, event: 'SCAN', scene: 'coupon_1', timestamp: signedAt, createTime: signedAt })));
		expect((await node.invoke(request)).execution).toHaveLength(1);

		// Far later than WeChat's own re-sends come, but the signed timestamp is still inside the window.
		vi.setSystemTime((signedAt + 890) * 1000);
		const copy = await node.invoke(request);
		expect(copy.status).toBe(200);
		expect(copy.body).toBe('success');
		expect(copy.execution).toBeUndefined();

		vi.setSystemTime((signedAt + 901) * 1000);
		expect((await node.invoke(request)).status).toBe(403);
	});

	it('refuses a captured plaintext query with another body (401), while WeChat\'s own re-send is still answered', async () => {
		const node = triggerNode('forged-body');
		const genuine = buildScanPush(push({ event: 'SCAN', scene: 'poster_1', openId: 'o_genuine_user' }));
		expect((await node.invoke(asRequest(genuine))).execution).toHaveLength(1);

		const forgedBody = buildScanPush(push({ event: 'SCAN', scene: 'vip_coupon_999', openId: 'o_attacker' })).body;
		const forged = await node.invoke(asRequest(genuine, forgedBody));
		expect(forged.status).toBe(401);
		expect(forged.body).toBe('This signature was already used for another push');
		expect(forged.execution).toBeUndefined();

		const resent = await node.invoke(asRequest(genuine));
		expect(resent).toMatchObject({ status: 200, body: 'success' });
		expect(resent.execution).toBeUndefined();
	});

	it('refuses a safe-mode query stripped down to plaintext with another body, even without Require Encryption', async () => {
		const node = triggerNode('downgrade');
		const genuine = buildScanPush(push({ mode: 'safe', event: 'SCAN', scene: 'poster_2' }));
		expect((await node.invoke(asRequest(genuine))).execution).toHaveLength(1);

		const { signature, timestamp, nonce } = genuine.query;
		const forgedBody = buildScanPush(push({ event: 'SCAN', scene: 'vip_coupon_999', openId: 'o_attacker' })).body;
		const downgraded = await node.invoke({ method: 'POST', query: { signature, timestamp, nonce }, rawBody: Buffer.from(forgedBody) });
		expect(downgraded.status).toBe(401);
		expect(downgraded.execution).toBeUndefined();
	});

	it.each(['plaintext', 'safe'] as const)('refuses a copy sent to another trigger node of the same Token (%s mode)', async (mode) => {
		const genuine = buildScanPush(push({ mode, event: 'subscribe', scene: 'store_7' }));
		expect((await triggerNode(`first-node-${mode}`).invoke(asRequest(genuine))).execution).toHaveLength(1);

		const copy = await triggerNode(`other-node-${mode}`).invoke(asRequest(genuine));
		expect(copy.status).toBe(401);
		expect(copy.body).toBe('This signed push was already delivered to another trigger');
		expect(copy.execution).toBeUndefined();
	});

	it('runs two encrypted pushes that share a timestamp and nonce by chance: each body has its own msg_signature', async () => {
		const node = triggerNode('shared-nonce');
		const timestamp = Math.floor(Date.now() / 1000);
		const first = buildScanPush(push({ mode: 'safe', event: 'SCAN', scene: 'a', openId: 'o_user_a', timestamp, nonce: '1514711492' }));
		const second = buildScanPush(push({ mode: 'safe', event: 'SCAN', scene: 'b', openId: 'o_user_b', timestamp, nonce: '1514711492' }));
		expect((await node.invoke(asRequest(first))).execution?.[0].json).toMatchObject({ scene: 'a' });
		expect((await node.invoke(asRequest(second))).execution?.[0].json).toMatchObject({ scene: 'b' });
	});
});

describe('a re-send while n8n is still storing the first delivery', () => {
	function slowStore() {
		const store = new CredentialStore();
		const credential = store.add('cred', 'weChatOfficialAccountApi', { appId: APP_ID, appSecret: 'unused-here', token: SERVER_TOKEN, encodingAESKey: AES_KEY });
		const trigger = createTrigger({ store, credential, parameters: { options: { replyText: 'Hi {scene}' } } });
		const built = buildScanPush(push({ mode: 'safe', event: 'subscribe', scene: 'slow_db' }));
		const request = { method: 'POST' as const, query: built.query, rawBody: Buffer.from(built.body) };
		const firstResponse = inMemoryResponse();
		const sendFirst = (storeDelayMs: number, storeFails = false) => {
			const first = trigger.invoke(request, firstResponse, { storeDelayMs, storeFails });
			firstResponse.hangUp();
			return first;
		};
		return { trigger, request, sendFirst };
	}
	const replyContent = (body: string) => openEncryptedReply(body, { token: SERVER_TOKEN, appId: APP_ID, encodingAESKey: AES_KEY }).fields.Content;

	it('executes the re-send when n8n then fails to store the first delivery', async () => {
		const { trigger, request, sendFirst } = slowStore();
		const first = sendFirst(400, true);

		const resent = await trigger.invoke(request);
		expect(resent.status).toBe(200);
		expect(replyContent(resent.body)).toBe('Hi slow_db');
		expect(resent.execution?.[0].json).toMatchObject({ scene: 'slow_db', event: 'subscribe' });
		expect((await first).execution).toBeUndefined();

		const again = await trigger.invoke(request);
		expect(again.status).toBe(200);
		expect(again.execution).toBeUndefined();
	});

	it('answers the re-send with the reply once n8n has stored the first delivery, and starts nothing', async () => {
		const { trigger, request, sendFirst } = slowStore();
		const first = sendFirst(400);

		const resent = await trigger.invoke(request);
		expect(resent.status).toBe(200);
		expect(replyContent(resent.body)).toBe('Hi slow_db');
		expect(resent.execution).toBeUndefined();
		expect((await first).execution?.[0].json).toMatchObject({ scene: 'slow_db' });
	});

	it('answers 503 and starts nothing while n8n is still storing the first delivery after the wait', async () => {
		const { trigger, request, sendFirst } = slowStore();
		const first = sendFirst(RESEND_WAIT_MS + 500);

		const resent = await trigger.invoke(request);
		expect(resent.status).toBe(503);
		expect(resent.execution).toBeUndefined();
		expect((await first).execution).toBeDefined();

		const third = await trigger.invoke(request);
		expect(third.status).toBe(200);
		expect(replyContent(third.body)).toBe('Hi slow_db');
		expect(third.execution).toBeUndefined();
	});
});

describe('passive replies', () => {
	it('replies with WeChat text XML, identities swapped, placeholders filled (plaintext)', async () => {
		const server = await trigger({ options: { replyText: '欢迎光临 {scene}！' } });
		const response = await sendScanPush(server.url, push({ event: 'subscribe', scene: '门店_7', openId: 'oUser', accountId: 'gh_account' }));
		expect(response.status).toBe(200);
		expect(response.headers['content-type']).toMatch(/xml/);
		const reply = parseWeChatXml(response.body);
		expect(reply).toMatchObject({ ToUserName: 'oUser', FromUserName: 'gh_account', MsgType: 'text', Content: '欢迎光临 门店_7！' });
		expect(Number(reply.CreateTime)).toBeGreaterThan(1_700_000_000);
		expect(server.executions).toHaveLength(1);
	});

	it('encrypts the reply with a fresh msg_signature in safe mode', async () => {
		const server = await trigger({ options: { replyText: 'Thanks for scanning {scene]]> ok' } });
		const response = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 'A1', openId: 'oUser', accountId: 'gh_account' }));
		const envelope = parseWeChatXml(response.body);
		expect(Object.keys(envelope).sort()).toEqual(['Encrypt', 'MsgSignature', 'Nonce', 'TimeStamp']);
		const opened = openEncryptedReply(response.body, { token: SERVER_TOKEN, appId: APP_ID, encodingAESKey: AES_KEY });
		expect(opened.signatureValid).toBe(true);
		expect(opened.fields).toMatchObject({ ToUserName: 'oUser', FromUserName: 'gh_account', MsgType: 'text', Content: 'Thanks for scanning {scene]]> ok' });
	});

	it('picks a reply per scene, falling back to the default text', async () => {
		const server = await trigger({
			options: {
				replyText: 'Hello',
				sceneReplies: { reply: [{ scene: 'store_*', text: 'Welcome to store {scene}' }, { scene: 'vip', text: 'Hi VIP' }] },
			},
		});
		const texts: string[] = [];
		for (const scene of ['store_9', 'vip', 'other']) {
			const response = await sendScanPush(server.url, push({ event: 'SCAN', scene }));
			texts.push(parseWeChatXml(response.body).Content);
		}
		expect(texts).toEqual(['Welcome to store store_9', 'Hi VIP', 'Hello']);
	});
});

describe('reply and filter parameters that are not plain text', () => {
	it('uses a number or an unset value from an expression as text, in the replies and the scene filter', async () => {
		const server = await trigger({
			sceneFilter: '={{ 1001 }}',
			options: { replyText: '={{ 2026 }}', sceneReplies: { reply: [{ scene: '={{ 1001 }}', text: '={{ $vars.UNSET_TEXT }}' }] } },
		});
		const click = await sendScanPush(server.url, push({ event: 'CLICK', scene: 'menu_1' }));
		expect(click).toMatchObject({ status: 200, body: 'success' });
		// 1001 matches the filter and its row, whose text is empty: no reply. Another scene is filtered out.
		const matched = await sendScanPush(server.url, push({ event: 'SCAN', scene: '1001' }));
		expect(matched).toMatchObject({ status: 200, body: 'success' });
		const other = await sendScanPush(server.url, push({ event: 'SCAN', scene: '1002' }));
		expect(other).toMatchObject({ status: 200, body: 'success' });
		expect(server.executions.map(([item]) => item.json.scene)).toEqual(['1001']);

		const unfiltered = await trigger({ options: { replyText: '={{ 2026 }}' } });
		const reply = await sendScanPush(unfiltered.url, push({ event: 'SCAN', scene: 'any' }));
		expect(parseWeChatXml(reply.body).Content).toBe('2026');
	});

	it('a reply expression that fails costs the reply, not the URL check nor the event', async () => {
		const server = await trigger({ options: { replyText: '={{ $("Coupon").item.json.code }}' } });
		const verification = await sendUrlVerification(server.url, { token: SERVER_TOKEN, echostr: '77' });
		expect(verification).toMatchObject({ status: 200, body: '77' });
		const scan = await sendScanPush(server.url, push({ event: 'SCAN', scene: 'store_1' }));
		expect(scan).toMatchObject({ status: 200, body: 'success' });
		expect(server.executions).toHaveLength(1);
		expect(loggedLines.join('\n')).toContain('WeChat Scan Trigger: the reply could not be built');
	});

	it('sends no message to a follower who just left', async () => {
		const server = await trigger({ events: ['scan', 'unsubscribe'], options: { replyText: 'Thanks for scanning {scene}!' } });
		const response = await sendScanPush(server.url, push({ event: 'unsubscribe' }));
		expect(response).toMatchObject({ status: 200, body: 'success' });
		expect(server.executions).toHaveLength(1);
	});

	it('answers success for a reply made only of characters XML forbids, not an empty text message', async () => {
		const server = await trigger({ options: { replyText: '\u0007\u0000' } });
		const response = await sendScanPush(server.url, push({ event: 'SCAN', scene: 's1' }));
		expect(response).toMatchObject({ status: 200, body: 'success' });
	});
});

describe('rejections start no execution', () => {
	it.each([
		['a wrong signature (plaintext)', 401, (p: ReturnType<typeof buildScanPush>) => ({ ...p, query: { ...p.query, signature: 'f'.repeat(40) } })],
		['a wrong msg_signature (safe)', 401, (p: ReturnType<typeof buildScanPush>) => ({ ...p, query: { ...p.query, msg_signature: '0'.repeat(40) } })],
		['a stale timestamp', 403, null],
		['malformed XML', 400, (p: ReturnType<typeof buildScanPush>) => ({ ...p, body: '<xml><ToUserName>oops</xml>' })],
		['an XML entity bomb', 400, (p: ReturnType<typeof buildScanPush>) => ({ ...p, body: '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Event>&b;</Event></xml>' })],
		['an oversized body', 413, (p: ReturnType<typeof buildScanPush>) => ({ ...p, body: `<xml><Pad>${'x'.repeat(70 * 1024)}</Pad></xml>` })],
	])('%s → %i', async (_name, status, tamper) => {
		const server = await trigger();
		const safe = _name.includes('safe');
		const built = buildScanPush(push({ mode: safe ? 'safe' : 'plaintext', event: 'SCAN', scene: 's1', timestamp: tamper ? undefined : Math.floor(Date.now() / 1000) - 3600 }));
		const request = tamper ? tamper(built) : built;
		const response = await postRaw(server.url, request.query, request.body);
		expect(response.status).toBe(status);
		expect(server.executions).toHaveLength(0);
	});

	it('refuses a push encrypted for another AppID (403) and a tampered ciphertext (401)', async () => {
		const server = await trigger();
		const foreign = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 's', appId: 'wxotheraccount01' }));
		expect(foreign.status).toBe(403);

		const built = buildScanPush(push({ mode: 'safe', event: 'SCAN', scene: 's' }));
		const encrypt = built.encrypt as string;
		const flipped = (encrypt[10] === 'A' ? 'B' : 'A');
		const tampered = encrypt.slice(0, 10) + flipped + encrypt.slice(11);
		const { weChatSignature } = await import('../nodes/WeChatScanTrigger/helpers/signature');
		const query = { ...built.query, msg_signature: weChatSignature([SERVER_TOKEN, built.query.timestamp, built.query.nonce, tampered]) };
		const response = await postRaw(server.url, query, built.body.replace(encrypt, tampered));
		// Garbled plaintext is refused either as undecryptable (401) or as not WeChat XML (400).
		expect([400, 401]).toContain(response.status);
		expect(server.executions).toHaveLength(0);
	});

	it('refuses a plaintext push when encryption is required (no downgrade)', async () => {
		const server = await trigger({ options: { requireEncryption: true } });
		const response = await sendScanPush(server.url, push({ mode: 'plaintext', event: 'SCAN', scene: 's' }));
		expect(response.status).toBe(403);
		const encrypted = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 's' }));
		expect(encrypted.status).toBe(200);
		expect(server.executions).toHaveLength(1);
	});

	it('refuses an encrypted push when the credential has no EncodingAESKey', async () => {
		const server = await trigger({}, { encodingAESKey: '' });
		const response = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 's' }));
		expect(response.status).toBe(403);
		expect(server.executions).toHaveLength(0);
	});

	it('answers 500 without executing when the credential has no Token or a malformed EncodingAESKey', async () => {
		for (const data of [{ token: '' }, { encodingAESKey: 'too-short' }] as Array<Record<string, string>>) {
			const server = await trigger({}, data);
			const response = await sendScanPush(server.url, push({ event: 'SCAN', scene: 's', token: SERVER_TOKEN }));
			expect(response.status).toBe(500);
			expect(response.body).not.toContain('too-short');
			expect(server.executions).toHaveLength(0);
		}
		const logged = loggedLines.join('\n');
		expect(logged).toContain('the credential has no Token');
		expect(logged).toContain('EncodingAESKey must be exactly 43 letters or digits');
		expect(logged).not.toContain('too-short');
	});

	it('honours a timestamp tolerance of 0 (disabled)', async () => {
		const server = await trigger({ options: { timestampToleranceSeconds: 0 } });
		const response = await sendScanPush(server.url, push({ event: 'SCAN', scene: 'old', timestamp: 1714112445 }));
		expect(response.status).toBe(200);
		expect(server.executions).toHaveLength(1);
	});
});

describe('key rotation', () => {
	it('accepts pushes under the previous EncodingAESKey and replies with that key', async () => {
		const oldKey = randomAesKey();
		const server = await trigger({ options: { replyText: 'ok' } }, { previousEncodingAESKey: oldKey });
		const response = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 'rot', encodingAESKey: oldKey }));
		expect(response.status).toBe(200);
		expect(openEncryptedReply(response.body, { token: SERVER_TOKEN, appId: APP_ID, encodingAESKey: oldKey }).fields.Content).toBe('ok');
		expect(server.executions).toHaveLength(1);
	});
});

describe('reading the credential', () => {
	it('reads it once for a burst of pushes, and applies an edited Token after the reuse time', async () => {
		const store = new CredentialStore();
		const data = { appId: APP_ID, appSecret: 'unused-here', token: SERVER_TOKEN, encodingAESKey: AES_KEY };
		const credential = store.add('cred', 'weChatOfficialAccountApi', data);
		const server = await startTriggerServer({ store, credential });
		servers.push(server);

		const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: `burst_${i}` }))));
		expect(burst.map((response) => response.status)).toEqual(Array(8).fill(200));
		expect(server.executions).toHaveLength(8);
		expect(store.reads).toBe(1);

		store.set('cred', { ...data, token: 'EditedServerToken' });
		await new Promise((resolve) => setTimeout(resolve, CREDENTIAL_REUSE_MS + 100));
		const edited = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 'after_edit', token: 'EditedServerToken' }));
		expect(edited.status).toBe(200);
		const oldToken = await sendScanPush(server.url, push({ mode: 'safe', event: 'SCAN', scene: 'old_token' }));
		expect(oldToken.status).toBe(401);
		expect(server.executions).toHaveLength(9);
		expect(store.reads).toBe(2);
	});

	it('reads it again on the next push after a failed read', async () => {
		const store = new CredentialStore();
		const server = await startTriggerServer({ store, credential: { id: 'missing', name: 'not saved yet' } });
		servers.push(server);

		const failed = await sendScanPush(server.url, push({ event: 'subscribe', scene: 'before' }));
		expect(failed.status).toBe(500);
		store.add('missing', 'weChatOfficialAccountApi', { appId: APP_ID, appSecret: 'unused-here', token: SERVER_TOKEN });
		const accepted = await sendScanPush(server.url, push({ event: 'subscribe', scene: 'after' }));
		expect(accepted.status).toBe(200);
		expect(store.reads).toBe(2);
		expect(server.executions).toHaveLength(1);
	});
});

describe('output schema for the editor', () => {
	it.each([
		['a SCAN with a text scene', push({ event: 'SCAN', scene: 'schema' })],
		['a SCAN with a numeric scene', push({ event: 'SCAN', scene: '1001' })],
		['a plain follow, without scene or ticket', push({ mode: 'safe', event: 'subscribe' })],
	])('lists exactly the fields of an event item, with their types: %s', async (_case, options) => {
		const schema = readOutputSchema('nodes/WeChatScanTrigger/__schema__/v1.0.0.json');
		const server = await trigger({ events: ['subscribeScene', 'scan', 'subscribe'] });
		await sendScanPush(server.url, options);
		const output = server.executions[0][0].json;
		expect(Object.keys(schema.properties ?? {}).sort()).toEqual(Object.keys(output).sort());
		expect(schemaMismatches(schema, output)).toEqual([]);
	});
});
