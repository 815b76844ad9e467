/**
 * Property-based tests (fast-check) on the trigger as n8n runs it and on the action parameters. The number
 * of generated cases scales with PROPERTY_RUNS_SCALE (1 here, more in `npm run test:long`).
 */
import { randomBytes } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { buildCreateTicketRequest, InvalidParameterError, LIMITS, normalizeTicket, validateLongData, validateShortKey } from '../nodes/WeChatQrCode/helpers/qrCodeRules';
import { WeChatCipher } from '../nodes/WeChatScanTrigger/helpers/crypto';
import { buildScanPush, type ScanPushOptions } from './simulator/push';
import { CredentialStore } from './helpers/n8nHarness';
import { createTrigger, type TriggerRequest } from './helpers/webhookHarness';

const SCALE = Math.max(1, Number(process.env.PROPERTY_RUNS_SCALE ?? 1));
const runs = (n: number) => Math.round(n * SCALE);

const APP_ID = 'wxprop0000000001';
const SERVER_TOKEN = ['prop', 'Token', '42'].join('');
const AES_KEY = randomBytes(32).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 43);
const OTHER_KEY = randomBytes(32).toString('base64').replace(/[^A-Za-z0-9]/g, 'y').slice(0, 43);
const DEFINED_STATUSES = [200, 400, 401, 403, 413];

function newTrigger(parameters: Record<string, unknown> = {}) {
	const store = new CredentialStore();
	const credential = store.add('cred', 'weChatOfficialAccountApi', { appId: APP_ID, appSecret: 'x', token: SERVER_TOKEN, encodingAESKey: AES_KEY });
	return createTrigger({ store, credential, parameters: { events: ['subscribeScene', 'scan', 'subscribe', 'unsubscribe'], ...parameters } as never });
}

const push = (options: Partial<ScanPushOptions>): ScanPushOptions => ({ token: SERVER_TOKEN, appId: APP_ID, encodingAESKey: AES_KEY, mode: 'safe', event: 'SCAN', ...options });

const queryValue = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }));
const arbitraryQuery = fc.dictionary(
	fc.oneof(fc.constantFrom('signature', 'timestamp', 'nonce', 'encrypt_type', 'msg_signature', 'echostr', 'openid'), fc.string({ maxLength: 10 })),
	queryValue,
	{ maxKeys: 8 },
);
const arbitraryBody = fc.oneof(
	fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)),
	fc.string({ unit: 'binary', maxLength: 2000 }).map((text) => Buffer.from(text)),
	fc.constantFrom('<xml>', '<xml><Encrypt><![CDATA[', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>', '').map((text) => Buffer.from(text)),
	fc.integer({ min: 60_000, max: 200_000 }).map((size) => Buffer.alloc(size, 0x41)),
);

describe('the trigger under arbitrary requests', () => {
	it('never throws, always answers with a defined status, and never executes an unsigned request', async () => {
		const trigger = newTrigger();
		await fc.assert(
			fc.asyncProperty(fc.constantFrom<'GET' | 'POST'>('GET', 'POST'), arbitraryQuery, arbitraryBody, async (method, query, rawBody) => {
				const response = await trigger.invoke({ method, query, rawBody });
				expect(response.thrown).toBeUndefined();
				expect(response.unanswered).toBeUndefined();
				expect(DEFINED_STATUSES).toContain(response.status);
				expect(response.execution).toBeUndefined();
			}),
			{ numRuns: runs(3000) },
		);
	});

	it('refuses truncated, bit-flipped or re-keyed versions of a valid push, and executes the untouched one', async () => {
		const trigger = newTrigger();
		let sequence = 0;
		await fc.assert(
			fc.asyncProperty(
				fc.constantFrom<ScanPushOptions['mode']>('plaintext', 'compatible', 'safe'),
				fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }),
				fc.nat(),
				fc.constantFrom('truncate', 'flip', 'wrong-key', 'wrong-signature', 'none'),
				async (mode, scene, position, tamper) => {
					const built = buildScanPush(push({ mode, scene, openId: `o${++sequence}`, createTime: 1_700_000_000 + sequence, timestamp: Math.floor(Date.now() / 1000) }));
					let request: TriggerRequest = { method: 'POST', query: built.query, rawBody: Buffer.from(built.body) };
					if (tamper === 'truncate') request = { ...request, rawBody: Buffer.from(built.body).subarray(0, position % built.body.length) };
					if (tamper === 'flip') {
						const bytes = Buffer.from(built.body);
						bytes[position % bytes.length] ^= 1 << position % 8;
						if (bytes.equals(Buffer.from(built.body))) return;
						request = { ...request, rawBody: bytes };
					}
					if (tamper === 'wrong-key') {
						const forged = buildScanPush(push({ mode: mode === 'plaintext' ? 'safe' : mode, scene, encodingAESKey: OTHER_KEY, openId: `o${sequence}` }));
						request = { method: 'POST', query: forged.query, rawBody: Buffer.from(forged.body) };
					}
					if (tamper === 'wrong-signature') request = { ...request, query: { ...request.query, signature: '0'.repeat(40), msg_signature: '0'.repeat(40) } };

					const response = await trigger.invoke(request);
					expect(response.thrown).toBeUndefined();
					expect(DEFINED_STATUSES).toContain(response.status);
					if (tamper === 'none') {
						expect(response.status).toBe(200);
						expect(response.execution?.[0].json.scene).toBe(scene);
					} else if (response.execution) {
						// Plaintext mode signs the query only (WeChat's design), so a changed body can pass there. In the
						// encrypted modes only a change outside the signed Encrypt element can pass, and the event must
						// then be exactly the one WeChat encrypted.
						expect(tamper).toMatch(/flip|truncate/);
						if (mode !== 'plaintext') {
							const { message } = response.execution[0].json as { message: Record<string, string> };
							expect(message).toEqual(Object.fromEntries(Object.entries(built.fields).map(([k, v]) => [k, String(v)])));
						}
					}
				},
			),
			{ numRuns: runs(2500) },
		);
	});

	it('executes each distinct event exactly once whatever the order and number of redeliveries', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.array(fc.record({ event: fc.nat({ max: 9 }), copies: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 12 }),
				fc.infiniteStream(fc.nat()),
				async (deliveries, shuffle) => {
					const trigger = newTrigger();
					const base = Math.floor(Math.random() * 1e9);
					const pushes = new Map<number, ReturnType<typeof buildScanPush>>();
					const queue: number[] = [];
					for (const { event, copies } of deliveries) {
						if (!pushes.has(event)) pushes.set(event, buildScanPush(push({ scene: `s${event}`, openId: `o${event}`, createTime: base + event })));
						for (let i = 0; i < copies; i++) queue.push(event);
					}
					const order = queue.map((event, i) => ({ event, key: shuffle.next().value + i / 1000 })).sort((a, b) => a.key - b.key);
					const executed: string[] = [];
					for (const { event } of order) {
						const built = pushes.get(event) as ReturnType<typeof buildScanPush>;
						const response = await trigger.invoke({ method: 'POST', query: built.query, rawBody: Buffer.from(built.body) });
						expect(response.status).toBe(200);
						expect(response.body).toBe('success');
						if (response.execution) executed.push(String(response.execution[0].json.scene));
					}
					expect(executed.sort()).toEqual([...pushes.keys()].map((event) => `s${event}`).sort());
				},
			),
			{ numRuns: runs(300) },
		);
	});

	it('round-trips any UTF-8 message through encrypt and decrypt', () => {
		const cipher = new WeChatCipher(AES_KEY, APP_ID);
		fc.assert(
			fc.property(fc.string({ unit: 'grapheme', maxLength: 500 }), (message) => {
				expect(cipher.decrypt(cipher.encrypt(message))).toBe(message);
			}),
			{ numRuns: runs(2000) },
		);
	});
});

describe('action parameters', () => {
	const anyValue = fc.oneof(
		fc.integer({ min: -10, max: 5_000_000_000 }),
		fc.double(),
		fc.string({ maxLength: 80 }),
		fc.constantFrom(null, undefined, true, '', ' 12 ', '1e3', '0x10', 'NaN'),
	);

	it('either builds a body within every WeChat limit or names the bad parameter and its range', () => {
		fc.assert(
			fc.property(fc.constantFrom('temporary', 'permanent'), fc.constantFrom('id', 'string'), anyValue, anyValue, anyValue, (qrType, sceneType, sceneId, sceneStr, expireSeconds) => {
				try {
					const { body } = buildCreateTicketRequest({ qrType, sceneType, sceneId, sceneStr, expireSeconds });
					const scene = body.action_info.scene;
					if ('scene_id' in scene) {
						const max = qrType === 'permanent' ? LIMITS.permanentSceneId.max : LIMITS.temporarySceneId.max;
						expect(Number.isInteger(scene.scene_id) && scene.scene_id >= 1 && scene.scene_id <= max).toBe(true);
					} else {
						expect(Array.from(scene.scene_str).length).toBeGreaterThanOrEqual(1);
						expect(Array.from(scene.scene_str).length).toBeLessThanOrEqual(64);
					}
					if (qrType === 'temporary') expect(body.expire_seconds).toBeGreaterThanOrEqual(60);
					if (qrType === 'temporary') expect(body.expire_seconds).toBeLessThanOrEqual(2592000);
					else expect(body.expire_seconds).toBeUndefined();
				} catch (error) {
					expect(error).toBeInstanceOf(InvalidParameterError);
					const { parameter, message } = error as InvalidParameterError;
					expect(['sceneId', 'sceneStr', 'expireSeconds']).toContain(parameter);
					expect(message.startsWith(parameter)).toBe(true);
					expect(message).toMatch(/\d/);
				}
			}),
			{ numRuns: runs(3000) },
		);
	});

	it('accepts only ticket, long data and short key values WeChat can take', () => {
		fc.assert(
			fc.property(anyValue, fc.string({ unit: 'binary', maxLength: 5000 }), (value, text) => {
				for (const check of [() => normalizeTicket(value), () => validateShortKey(value), () => validateLongData(text)]) {
					try {
						const result = check();
						expect(typeof result).toBe('string');
						expect(result.length).toBeGreaterThan(0);
					} catch (error) {
						expect(error).toBeInstanceOf(InvalidParameterError);
					}
				}
			}),
			{ numRuns: runs(1500) },
		);
	});
});
