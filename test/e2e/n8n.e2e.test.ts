/**
 * End-to-end: this package installed into a real n8n (the version pinned in scripts/versions.json, on Node 24),
 * WeChat replaced by the simulator running in this process on 127.0.0.1. Nothing leaves the loopback.
 *
 * Phase 1 (n8n's CLI, no server): the package loads as an installed community package; the demo workflow
 * creates codes, images, short keys; the access token is stored in the credential and reused; a retired
 * shortenUrl fails with its explanation. The CLI runs before `n8n start` because a running n8n does not see
 * a CLI publish, and the two would share one SQLite file.
 * Phase 2 (`n8n start`): published scan triggers behind their production webhook URLs, WeChat's URL
 * verification, signed and encrypted pushes, passive replies, forged pushes and retries, checked against the
 * executions n8n recorded (public API).
 * Afterwards (n8n stopped): the credential is stored only encrypted, and none of its secrets nor any access
 * token the simulator issued appears in plaintext in n8n's user folder (database, logs, binary data) or in the
 * errors the tests provoked.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import jpeg from 'jpeg-js';
import jsQR from 'jsqr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as rt from '../../scripts/n8n-runtime.mjs';
import type { ExecuteResult, Instance, PublicApiExecution, RunData, Runtime } from '../../scripts/n8n-runtime.mjs';
import { DEMO_LOGIN, WEBHOOK_PATH, demoCredentialFor, loadDemo, type DemoWorkflow } from '../../scripts/start.mjs';
import { parseWeChatXml } from '../../nodes/WeChatScanTrigger/helpers/xml';
import { startSimulator, type WeChatSimulator } from '../simulator';
import { buildScanPush, openEncryptedReply, sendScanPush, sendUrlVerification } from '../simulator/push';
import { describeHit, needlesFor, scanFolder, searchBuffer, type Secret } from './secretScan';

const PKG = rt.PACKAGE_NAME;
const demo = loadDemo();
const CHANNELS = ['store_001', 'store_002', 'poster_spring', 'rep_zhang'];

const IDS = {
	codes: 'e2eCodesBase64v1',
	retired: 'e2eRetiredShort1',
	reuseCheck: 'e2eTokenReuse001',
	quietTrigger: 'e2eQuietTrigger1',
	quietWebhookId: '0c3f6a52-7d1e-4b8a-9e24-5f1a3c7b9d60',
};

let runtime: Runtime;
let sim: WeChatSimulator;
let instance: Instance;
let userFolder: string;
let credential: ReturnType<typeof demoCredentialFor>;
const n8nLog = () => path.join(userFolder, 'n8n.log');
const cliLog = () => path.join(userFolder, 'n8n-cli.log');
/** Error texts the tests provoke (failed executions, refused webhook calls): searched for secrets at the end. */
const provoked: Array<{ source: string; text: string }> = [];

/** 16 base62 characters, like n8n's own ids. */
function freshKey(length: number): string {
	const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
	return Array.from(randomBytes(length), (byte) => alphabet[byte % alphabet.length]).join('');
}

function clone<T>(value: T): T {
	return JSON.parse(JSON.stringify(value)) as T;
}

function node(workflow: DemoWorkflow, name: string): DemoWorkflow['nodes'][number] {
	const found = workflow.nodes.find((n) => n.name === name);
	if (!found) throw new Error(`no node "${name}" in ${workflow.name}`);
	return clone(found);
}

/** The demo workflow plus two side branches that turn each image into base64 JSON (binary data lives on disk). */
function codesWithImagesAsBase64(): DemoWorkflow {
	const workflow = clone(demo.createCodes);
	workflow.id = IDS.codes;
	workflow.name = `${demo.createCodes.name} (e2e: images as base64)`;
	const toBase64 = (name: string, binaryPropertyName: string, y: number) => ({
		id: crypto.randomUUID(),
		name,
		type: 'n8n-nodes-base.extractFromFile',
		typeVersion: 1.1,
		position: [660, y],
		parameters: { operation: 'binaryToPropery', binaryPropertyName, destinationKey: 'imageBase64', options: { keepSource: 'json' } },
	});
	workflow.nodes.push(toBase64('Ticket image as base64', 'data', 300), toBase64('Fetched image as base64', 'qrImage', 500));
	workflow.connections['Create QR Ticket'].main[0].push({ node: 'Ticket image as base64', type: 'main', index: 0 });
	workflow.connections['Get QR Image'].main[0].push({ node: 'Fetched image as base64', type: 'main', index: 0 });
	return workflow;
}

function singleNodeWorkflow(id: string, name: string, actionNode: DemoWorkflow['nodes'][number]): DemoWorkflow {
	return {
		id,
		name,
		active: false,
		nodes: [node(demo.createCodes, 'Start'), { ...actionNode, position: [240, 0] }],
		connections: { Start: { main: [[{ node: actionNode.name, type: 'main', index: 0 }]] } },
		settings: { executionOrder: 'v1' },
		pinData: {},
	};
}

function retiredShortenUrl(): DemoWorkflow {
	const shorten = node(demo.createCodes, 'Shorten URL');
	shorten.parameters = { resource: 'shortLink', operation: 'shortenUrl', longUrl: 'https://example.com/spring?from=e2e', options: {} };
	return singleNodeWorkflow(IDS.retired, 'e2e: retired shortenUrl', shorten);
}

function tokenCheck(): DemoWorkflow {
	const create = node(demo.createCodes, 'Create QR Ticket');
	create.parameters = { resource: 'qrCode', operation: 'createTicket', qrType: 'temporary', sceneType: 'id', sceneId: 4242, expireSeconds: 3600, options: {} };
	return singleNodeWorkflow(IDS.reuseCheck, 'e2e: second execution reuses the token', create);
}

/** A trigger without reply text: WeChat gets "success". */
function quietTrigger(): DemoWorkflow {
	const trigger = node(demo.scanTrigger, 'WeChat Scan Trigger');
	trigger.webhookId = IDS.quietWebhookId;
	trigger.parameters = { events: ['subscribeScene', 'scan'], sceneFilter: '', options: {} };
	return { id: IDS.quietTrigger, name: 'e2e: quiet scan trigger', active: false, nodes: [trigger], connections: {}, settings: { executionOrder: 'v1' }, pinData: {} };
}

function items(run: RunData, nodeName: string) {
	const runs = run.data.resultData.runData[nodeName];
	expect(runs, `node "${nodeName}" did not run`).toBeDefined();
	return runs[0].data?.main[0] ?? [];
}

function decodeQr(base64: string): string | undefined {
	const image = jpeg.decode(Buffer.from(base64, 'base64'), { useTArray: true });
	return jsQR(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.byteLength), image.width, image.height)?.data;
}

function expectOk(result: ExecuteResult): RunData {
	if (!result.ok || !result.data) {
		throw new Error(`execution failed (exit ${result.code}): ${result.error?.message ?? ''}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
	}
	return result.data;
}

function stableTokenCalls(): number {
	return sim.requestsTo('/cgi-bin/stable_token').length;
}

beforeAll(async () => {
	runtime = await rt.ensureRuntime(); // installed by globalSetup: only the marker check here
	// Fresh secrets per run (the demo's are in the repository): a plaintext hit at the end can only come from this run.
	sim = await startSimulator({ port: 0, appSecret: freshKey(32) });
	userFolder = rt.tmpUserFolder();
	// snapshot: a copy of dist/, so that a rebuild in the same checkout during the run cannot unload the package.
	instance = await rt.createInstance(runtime, {
		userFolder,
		port: await rt.getFreePort(),
		encryptionKey: `e2e-${freshKey(32)}`,
		snapshot: true,
		cliLogFile: cliLog(),
	});
	credential = demoCredentialFor(demo.credential, sim);
	// A previous key too, so that the key-rotation field is stored (and searched for) like the others.
	Object.assign(credential.data, { token: freshKey(32), encodingAESKey: freshKey(43), previousEncodingAESKey: freshKey(43) });
	await rt.importCredential(instance, credential);
	await rt.importWorkflow(instance, [codesWithImagesAsBase64(), retiredShortenUrl(), tokenCheck(), demo.scanTrigger, quietTrigger()]);
});

afterAll(async () => {
	// Also on failure: nothing started here outlives the run.
	await rt.stopN8n(instance);
	await rt.stopAllTracked();
	await sim?.close();
	if (userFolder) fs.rmSync(userFolder, { recursive: true, force: true });
});

describe('n8n CLI (before n8n start)', () => {
	it('loads the package as an installed community package', async () => {
		const installed = path.join(userFolder, '.n8n', 'nodes', 'node_modules', PKG);
		expect(JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).name).toBe(PKG);
		expect(fs.existsSync(path.join(installed, 'dist', 'nodes', 'WeChatQrCode', 'WeChatQrCode.node.js'))).toBe(true);
		expect(fs.realpathSync(path.join(installed, 'node_modules'))).toBe(path.join(rt.REPO_ROOT, 'node_modules'));
		expect(JSON.parse(fs.readFileSync(path.join(userFolder, '.n8n', 'nodes', 'package.json'), 'utf8')).dependencies).toHaveProperty(PKG);
		const types = await rt.exportNodeTypes(instance);
		expect(types).toEqual(expect.arrayContaining([`${PKG}.weChatQrCode`, `${PKG}.weChatScanTrigger`]));
	});

	it('runs the demo workflow: a code and image per channel, a short-key round trip, shortenUrl with the original', async () => {
		expect(stableTokenCalls()).toBe(0);
		const run = expectOk(await rt.executeWorkflow(instance, IDS.codes));
		expect(run.status).toBe('success');

		const tickets = items(run, 'Create QR Ticket');
		expect(tickets.map((item) => item.json.scene)).toEqual(CHANNELS);
		const issued = new Map(sim.tickets().map((ticket) => [ticket.ticket, ticket]));
		tickets.forEach((item, index) => {
			const { ticket, url, actionName, qrType, expireSeconds } = item.json as Record<string, unknown>;
			expect(issued.get(String(ticket))).toMatchObject({ url, scene: CHANNELS[index], actionName: 'QR_STR_SCENE' });
			expect({ actionName, qrType, expireSeconds }).toEqual({ actionName: 'QR_STR_SCENE', qrType: 'temporary', expireSeconds: 604800 });
			expect(item.binary?.data).toMatchObject({ mimeType: 'image/jpeg', fileExtension: 'jpg' });
		});
		const urls = tickets.map((item) => item.json.url);

		// The JPEGs n8n stored decode to QR codes of the ticket urls (downloadImage, then Get QR Image).
		expect(items(run, 'Ticket image as base64').map((item) => decodeQr(String(item.json.imageBase64)))).toEqual(urls);
		expect(items(run, 'Get QR Image').map((item) => item.binary?.qrImage?.mimeType)).toEqual(CHANNELS.map(() => 'image/jpeg'));
		expect(items(run, 'Fetched image as base64').map((item) => decodeQr(String(item.json.imageBase64)))).toEqual(urls);

		const created = items(run, 'Create Short Key');
		const resolved = items(run, 'Resolve Short Key');
		expect(resolved.map((item) => item.json.shortKey)).toEqual(created.map((item) => item.json.shortKey));
		expect(resolved.map((item) => item.json.longData)).toEqual(created.map((item) => item.json.longData));
		expect(resolved.map((item) => JSON.parse(String(item.json.longData)).channel)).toEqual(CHANNELS);
		created.forEach((item) => expect(item.json.shortKey).toMatch(/^[A-Za-z0-9]{15}$/));

		expect(items(run, 'Shorten URL').map((item) => item.json)).toEqual(
			CHANNELS.map((channel) => {
				const longUrl = `https://example.com/campaign?channel=${channel}`;
				return { longUrl, shortUrl: longUrl, shortened: false };
			}),
		);
		// Five WeChat nodes, 4 items each: one token for the whole execution.
		expect(stableTokenCalls()).toBe(1);
	});

	it('stores the access token in the credential, and the next execution reuses it', async () => {
		const exported = await rt.exportCredential(instance, credential.id);
		expect(exported.type).toBe('weChatOfficialAccountApi');
		const accessToken = String(exported.data.accessToken ?? '');
		expect(accessToken).not.toBe('');
		expect(sim.issuedTokens()).toContain(accessToken);
		// n8n keeps the expiry next to the token, so a later run can renew the token before WeChat refuses it.
		const expiresInMs = Number(exported.data.accessTokenExpiresAt) - Date.now();
		expect(expiresInMs).toBeGreaterThan(6_000_000);
		expect(expiresInMs).toBeLessThanOrEqual(7_200_000);

		const fetchesBefore = sim.tokenFetches();
		const createsBefore = sim.requestsTo('/cgi-bin/qrcode/create').length;
		const run = expectOk(await rt.executeWorkflow(instance, IDS.reuseCheck));
		expect(items(run, 'Create QR Ticket')[0].json).toMatchObject({ scene: 4242, actionName: 'QR_SCENE' });

		expect(sim.tokenFetches()).toBe(fetchesBefore);
		expect(stableTokenCalls()).toBe(1);
		const creates = sim.requestsTo('/cgi-bin/qrcode/create');
		expect(creates.length).toBe(createsBefore + 1);
		expect(creates.at(-1)?.query.access_token).toBe(accessToken);
	});

	it('fails a shortenUrl without "return original" with the retired-API explanation', async () => {
		const shortUrlCalls = sim.requestsTo('/cgi-bin/shorturl').length;
		const result = await rt.executeWorkflow(instance, IDS.retired);
		expect(result.ok).toBe(false);
		provoked.push({ source: 'retired shortenUrl: execution error', text: JSON.stringify(result.error) });
		expect(result.error?.message).toBe('WeChat no longer shortens URLs');
		expect(String(result.error?.description)).toContain('Create Short Key');
		expect(sim.requestsTo('/cgi-bin/shorturl').length).toBe(shortUrlCalls + 1);
	});
});

describe('scan triggers behind n8n start', () => {
	const token = () => credential.data.token;
	const aes = () => credential.data.encodingAESKey;
	const appId = () => credential.data.appId;
	const demoUrl = () => `${instance.baseUrl}/webhook/${demo.webhookId}/${WEBHOOK_PATH}`;
	const quietUrl = () => `${instance.baseUrl}/webhook/${IDS.quietWebhookId}/${WEBHOOK_PATH}`;
	let apiKey: string;
	let cookie: string;

	/** The trigger output of each successful execution of a workflow, as n8n recorded it. */
	async function recorded(workflowId: string): Promise<Array<{ execution: PublicApiExecution; event: Record<string, unknown> }>> {
		const executions = await rt.listExecutions(instance, apiKey, { workflowId });
		return executions
			.filter((execution) => execution.finished && execution.data)
			.map((execution) => ({
				execution,
				event: execution.data!.resultData.runData['WeChat Scan Trigger'][0].data!.main[0]![0].json,
			}));
	}

	/** Waits until `count` executions for this openId are recorded, then checks no more arrive. */
	async function executionsFor(workflowId: string, openId: string, count: number) {
		const deadline = Date.now() + 30_000;
		let found = (await recorded(workflowId)).filter((r) => r.event.openId === openId);
		while (found.length < count && Date.now() < deadline) {
			await rt.sleep(500);
			found = (await recorded(workflowId)).filter((r) => r.event.openId === openId);
		}
		await rt.sleep(1_500);
		found = (await recorded(workflowId)).filter((r) => r.event.openId === openId);
		expect(found.length, `executions recorded for ${openId}`).toBe(count);
		return found;
	}

	async function allExecutionCount(): Promise<number> {
		return (await rt.listExecutions(instance, apiKey, { includeData: false })).length;
	}

	const openId = () => `o${freshKey(27)}`;

	beforeAll(async () => {
		// Published before the server starts: a running n8n does not pick up a CLI publish.
		await rt.publishWorkflow(instance, demo.scanTrigger.id);
		await rt.publishWorkflow(instance, IDS.quietTrigger);
		await rt.startN8n(instance, { logFile: n8nLog() });
		cookie = await rt.setupOwner(instance, DEMO_LOGIN);
		expect(await rt.servedNodeTypes(instance, cookie)).toEqual(expect.arrayContaining([`${PKG}.weChatQrCode`, `${PKG}.weChatScanTrigger`]));
		apiKey = await rt.createApiKey(instance, cookie);
		await rt.waitForWebhook(demoUrl());
		await rt.waitForWebhook(quietUrl());
	});

	it("passes n8n's credential test (the Test button), and fails it with WeChat's hint on a wrong AppSecret or AppID", async () => {
		// What the editor sends for a saved credential: its id, and the form's values.
		const test = async (data: Record<string, unknown>) => {
			const response = await rt.restRequest(instance, 'POST', '/rest/credentials/test', {
				cookie,
				body: { credentials: { id: credential.id, name: credential.name, type: credential.type, data } },
			});
			expect(response.status, response.text.slice(0, 300)).toBe(200);
			return (response.json as { data: { status: string; message: string } }).data;
		};
		const callbackIpCalls = () => sim.requestsTo('/cgi-bin/getcallbackip').length;

		const before = callbackIpCalls();
		expect(await test(credential.data)).toMatchObject({ status: 'OK' });
		expect(callbackIpCalls()).toBe(before + 1);

		const wrongSecret = await test({ ...credential.data, appSecret: freshKey(32) });
		provoked.push({ source: 'credential test with a wrong AppSecret: message', text: wrongSecret.message });
		expect(wrongSecret.status).toBe('Error');
		expect(wrongSecret.message).toMatch(/Invalid AppSecret/);
		expect(wrongSecret.message).toMatch(/reset the AppSecret/);

		const wrongAppId = await test({ ...credential.data, appId: 'wxnotmyapp0000000' });
		provoked.push({ source: 'credential test with a wrong AppID: message', text: wrongAppId.message });
		expect(wrongAppId.status).toBe('Error');
		expect(wrongAppId.message).toMatch(/Invalid AppID/);
		// Neither failure got as far as WeChat's test call.
		expect(callbackIpCalls()).toBe(before + 1);
	});

	it("fails n8n's credential test when the API base URL redirects, and the access token never reaches the redirect's target", async () => {
		// A relay that fetches tokens from the simulator but redirects every other call elsewhere, repeating the
		// query string (access_token included) as nginx's `$request_uri` redirects do. The target would answer
		// like WeChat, so a test that followed the redirect would pass.
		const listen = (server: http.Server) =>
			new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
		const reached: string[] = [];
		const target = http.createServer((req, res) => {
			reached.push(req.url ?? '');
			res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ip_list: ['127.0.0.1'] }));
		});
		const targetUrl = await listen(target);
		const relay = http.createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				if (req.url?.startsWith('/cgi-bin/stable_token')) {
					void fetch(`${sim.apiBaseUrl}/cgi-bin/stable_token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Buffer.concat(chunks) })
						.then(async (answer) => res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(await answer.text()))
						.catch(() => res.writeHead(502).end());
					return;
				}
				res.writeHead(302, { Location: `${targetUrl}${req.url ?? '/'}` }).end();
			});
		});
		try {
			const relayUrl = await listen(relay);
			const tokenCallsBefore = sim.requestsTo('/cgi-bin/stable_token').length;
			const response = await rt.restRequest(instance, 'POST', '/rest/credentials/test', {
				cookie,
				body: {
					credentials: {
						id: credential.id,
						name: credential.name,
						type: credential.type,
						data: { ...credential.data, apiBaseUrl: relayUrl },
					},
				},
			});
			expect(response.status, response.text.slice(0, 300)).toBe(200);
			const result = (response.json as { data: { status: string; message: string } }).data;
			provoked.push({ source: 'credential test through a redirecting API base URL: message', text: result.message });
			// The token came through the relay, so the test did get as far as WeChat's test call.
			expect(sim.requestsTo('/cgi-bin/stable_token').length).toBe(tokenCallsBefore + 1);
			expect(result.status).toBe('Error');
			expect(reached).toEqual([]);
		} finally {
			await Promise.all([relay, target].map((server) => new Promise((resolve) => server.close(resolve))));
		}
	});

	it("passes WeChat's URL verification through the production webhook URL", async () => {
		const verification = await sendUrlVerification(demoUrl(), { token: token() });
		expect(verification.status).toBe(200);
		expect(verification.body).toBe(verification.echostr);
		const forged = await sendUrlVerification(demoUrl(), { token: 'notTheToken1' });
		provoked.push({ source: 'forged URL verification: response body', text: forged.body });
		expect(forged.status).toBe(401);
		expect(forged.body).not.toBe(forged.echostr);
	});

	it('answers a plaintext subscribe "success" and records the new follower', async () => {
		const follower = openId();
		const response = await sendScanPush(quietUrl(), { token: token(), mode: 'plaintext', event: 'subscribe', scene: 'store_7', openId: follower });
		expect(response.status).toBe(200);
		expect(response.body).toBe('success');
		expect(response.headers['content-type']).toMatch(/^text\/plain/);
		const [{ execution, event }] = await executionsFor(IDS.quietTrigger, follower, 1);
		expect(execution).toMatchObject({ status: 'success', mode: 'webhook' });
		expect(event).toMatchObject({ event: 'subscribe', scene: 'store_7', openId: follower, isNewFollower: true, sceneId: null });
	});

	it('replies encrypted to a safe-mode SCAN and branches on the scene', async () => {
		const follower = openId();
		const response = await sendScanPush(demoUrl(), { token: token(), appId: appId(), encodingAESKey: aes(), mode: 'safe', event: 'SCAN', scene: 'store_42', openId: follower });
		expect(response.status).toBe(200);
		expect(response.body).toContain('<Encrypt>');
		expect(response.body).not.toContain('store_42');
		const reply = openEncryptedReply(response.body, { token: token(), appId: appId(), encodingAESKey: aes() });
		expect(reply.signatureValid).toBe(true);
		expect(reply.fields).toMatchObject({ ToUserName: follower, MsgType: 'text', Content: 'Welcome! You scanned store_42.' });

		const [{ execution, event }] = await executionsFor(demo.scanTrigger.id, follower, 1);
		expect(event).toMatchObject({ event: 'SCAN', scene: 'store_42', openId: follower, isNewFollower: false });
		const runData = execution.data!.resultData.runData;
		expect(runData['Store visit'][0].data!.main[0]![0].json).toMatchObject({ branch: 'store', store: '42', scene: 'store_42' });
		expect(runData['Other channel']).toBeUndefined();
	});

	it('replies in plaintext XML to a plaintext subscribe and takes the other branch', async () => {
		const follower = openId();
		const response = await sendScanPush(demoUrl(), { token: token(), mode: 'plaintext', event: 'subscribe', scene: 'poster_spring', openId: follower });
		expect(response.status).toBe(200);
		expect(response.headers['content-type']).toMatch(/xml/);
		expect(parseWeChatXml(response.body)).toMatchObject({ ToUserName: follower, MsgType: 'text', Content: 'Welcome! You scanned poster_spring.' });

		const [{ execution, event }] = await executionsFor(demo.scanTrigger.id, follower, 1);
		expect(event).toMatchObject({ event: 'subscribe', scene: 'poster_spring', isNewFollower: true });
		expect(execution.data!.resultData.runData['Other channel'][0].data!.main[0]![0].json).toMatchObject({ branch: 'other' });
	});

	it('refuses forged pushes with 401/403 and records no execution', async () => {
		const before = await allExecutionCount();
		const forgedIds: string[] = [];
		const send = async (url: string, options: Omit<Parameters<typeof sendScanPush>[1], 'event'>) => {
			const id = openId();
			forgedIds.push(id);
			const response = await sendScanPush(url, { event: 'subscribe', scene: 'store_9', ...options, openId: id });
			provoked.push({ source: `forged push #${forgedIds.length}: response body`, text: response.body });
			return response.status;
		};
		const otherKey = freshKey(43);
		expect(await send(quietUrl(), { token: 'wrongToken99', mode: 'plaintext' })).toBe(401);
		expect(await send(demoUrl(), { token: 'wrongToken99', appId: appId(), encodingAESKey: aes(), mode: 'safe' })).toBe(401);
		expect(await send(demoUrl(), { token: token(), appId: 'wxf0rged0000000001', encodingAESKey: aes(), mode: 'safe' })).toBe(403);
		expect([401, 403]).toContain(await send(demoUrl(), { token: token(), appId: appId(), encodingAESKey: otherKey, mode: 'safe' }));
		expect(await send(quietUrl(), { token: token(), mode: 'plaintext', timestamp: Math.floor(Date.now() / 1000) - 3600 })).toBe(403);

		await rt.sleep(2_000);
		expect(await allExecutionCount()).toBe(before);
		const events = [...(await recorded(demo.scanTrigger.id)), ...(await recorded(IDS.quietTrigger))].map((r) => r.event.openId);
		for (const id of forgedIds) expect(events).not.toContain(id);
	});

	it('answers every retry of a push but executes it once', async () => {
		const follower = openId();
		const push = buildScanPush({ token: token(), appId: appId(), encodingAESKey: aes(), mode: 'safe', event: 'subscribe', scene: 'store_5', openId: follower });
		const url = new URL(demoUrl());
		for (const [name, value] of Object.entries(push.query)) url.searchParams.set(name, value);
		const contents: string[] = [];
		for (let attempt = 0; attempt < 4; attempt++) {
			const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: push.body });
			expect(response.status).toBe(200);
			const reply = openEncryptedReply(await response.text(), { token: token(), appId: appId(), encodingAESKey: aes() });
			contents.push(reply.fields.Content);
		}
		expect(contents).toEqual(Array(4).fill('Welcome! You scanned store_5.'));
		const [{ event }] = await executionsFor(demo.scanTrigger.id, follower, 1);
		expect(event).toMatchObject({ event: 'subscribe', scene: 'store_5', isNewFollower: true });
	});
});

describe('cleanup', () => {
	it('stops n8n and every process it started', async () => {
		const serverPid = instance.server?.pid;
		expect(serverPid).toBeTypeOf('number');
		await rt.stopN8n(instance);
		await rt.stopAllTracked();
		expect(rt.trackedPids()).toEqual([]);
		// The whole process group is gone (n8n, its task runners).
		expect(() => process.kill(-serverPid!, 0)).toThrow();
		expect(await rt.isPortInUse(instance.port)).toBe(false);
	});
});

describe('secrets after the run (n8n stopped)', () => {
	const dbFile = () => path.join(userFolder, '.n8n', 'database.sqlite');
	let stored: { type: string; data: string } | null = null;

	/** The credential row as n8n stored it, read from its database file with the runtime's Node 24 (node:sqlite). */
	async function storedCredential(): Promise<{ type: string; data: string } | null> {
		const script = [
			"const { DatabaseSync } = require('node:sqlite');",
			'const db = new DatabaseSync(process.argv[1], { readOnly: true });',
			"const row = db.prepare('SELECT type, data FROM credentials_entity WHERE id = ?').get(process.argv[2]);",
			'db.close();',
			'process.stdout.write(JSON.stringify(row ?? null));',
		].join('\n');
		const result = await rt.run(runtime.nodeBin, ['--no-warnings', '-e', script, dbFile(), credential.id], {
			env: { PATH: process.env.PATH ?? '' },
			timeoutMs: 30_000,
			label: 'node:sqlite credentials_entity',
		});
		if (result.code !== 0) throw new Error(`reading ${dbFile()} failed (exit ${result.code ?? result.signal}): ${result.stderr}`);
		return JSON.parse(result.stdout) as { type: string; data: string } | null;
	}

	function secrets(): Secret[] {
		const { appSecret, token, encodingAESKey, previousEncodingAESKey } = credential.data;
		return [
			{ name: 'AppSecret', value: appSecret },
			{ name: 'Token', value: token },
			{ name: 'EncodingAESKey', value: encodingAESKey },
			{ name: 'Previous EncodingAESKey', value: previousEncodingAESKey },
			...sim.issuedTokens().map((value, index) => ({ name: `access token #${index + 1}`, value })),
		];
	}

	it('stores the credential encrypted, and n8n decrypts it to the secrets and an issued token', async () => {
		stored = await storedCredential();
		expect(stored?.type).toBe('weChatOfficialAccountApi');
		expect(stored!.data.length).toBeGreaterThan(100);
		expect(() => JSON.parse(stored!.data)).toThrow();
		const decrypted = await rt.exportCredential(instance, credential.id);
		// Compared field by field, so that a failure names the field without printing the secret.
		const fields = ['appSecret', 'token', 'encodingAESKey', 'previousEncodingAESKey'] as const;
		expect(Object.fromEntries(fields.map((field) => [field, decrypted.data[field] === credential.data[field]]))).toEqual(
			Object.fromEntries(fields.map((field) => [field, true])),
		);
		expect(sim.issuedTokens().includes(String(decrypted.data.accessToken)), 'the stored access token is one the simulator issued').toBe(true);
	});

	it('finds the secrets when they are planted (the search can fail)', () => {
		const { appSecret, token } = credential.data;
		const accessToken = sim.issuedTokens()[0];
		const prefix = randomBytes(100);
		const query = Buffer.from(`GET /cgi-bin/qrcode/create?access_token=${accessToken}&x=1\n`);
		// One byte before the Token: its base64 starts off a 3-byte boundary.
		const encoded = Buffer.from(Buffer.from(`x${token}`).toString('base64'));
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secret-scan-check-'));
		try {
			fs.writeFileSync(path.join(dir, 'planted.bin'), Buffer.concat([prefix, Buffer.from(appSecret), query, encoded]));
			const { hits } = scanFolder(dir, needlesFor(secrets()));
			const lines = hits.map(describeHit);
			expect(lines).toEqual([
				`planted.bin @ byte 100: AppSecret (raw)`,
				// The first two base64 characters also carry bits of the "x": the match starts at the third.
				`planted.bin @ byte ${100 + appSecret.length + query.length + 2}: Token (base64 (shift 1))`,
				`planted.bin @ byte ${100 + appSecret.length + query.indexOf(accessToken)}: access token #1 (raw)`,
			]);
			for (const { value } of secrets()) expect(lines.join('\n').includes(value)).toBe(false);
		} finally {
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});

	it("leaves no secret in plaintext in n8n's database, logs and files, nor in the errors the tests provoked", () => {
		expect(stored, 'the credential row was read').not.toBeNull();
		const issued = sim.issuedTokens();
		expect(issued.length).toBeGreaterThanOrEqual(1);
		const needles = needlesFor(secrets());
		const scan = scanFolder(userFolder, needles);
		const bytesOf = (file: string) => scan.files.find((f) => f.file === file)?.bytes ?? 0;
		const logs = scan.files.filter((f) => f.file.endsWith('.log'));
		const textHits = provoked.flatMap(({ source, text }) => searchBuffer(Buffer.from(text), source, needles));
		const database = scan.files.filter((f) => path.basename(f.file).startsWith('database.sqlite'));
		// Files and bytes per folder two levels down (e.g. .n8n/binaryData), for the figure in the README.
		const byFolder = new Map<string, { files: number; bytes: number }>();
		for (const f of scan.files) {
			const key = path.relative(userFolder, f.file).split(path.sep).slice(0, 2).join('/');
			const entry = byFolder.get(key) ?? { files: 0, bytes: 0 };
			byFolder.set(key, { files: entry.files + 1, bytes: entry.bytes + f.bytes });
		}
		rt.log(
			`searched ${scan.files.length} files, ${scan.bytes} bytes in ${userFolder} (database ${database.map((f) => `${path.basename(f.file)} ${f.bytes}`).join(', ')}; ` +
				`logs ${logs.map((f) => `${path.relative(userFolder, f.file)} ${f.bytes}`).join(', ')}; ${scan.symlinks.length} symlinks not followed; ` +
				`by folder: ${[...byFolder].map(([key, { files, bytes }]) => `${key} ${files} files ${bytes} bytes`).join(', ')}) ` +
				`and ${provoked.length} provoked error texts for ${secrets().length} secrets (${issued.length} access tokens issued), ` +
				`${needles.length} byte patterns: ${scan.hits.length + textHits.length} hits`,
		);

		// Not vacuous: the database with the credential, the server log and the CLI log were read ...
		expect(bytesOf(dbFile())).toBeGreaterThan(0);
		expect(bytesOf(n8nLog())).toBeGreaterThan(0);
		expect(bytesOf(cliLog())).toBeGreaterThan(0);
		// (The row may still be in the -wal file rather than the database file itself.)
		const inDatabase = (text: string) =>
			database.flatMap((f) => searchBuffer(fs.readFileSync(f.file), f.file, [{ secret: 'marker', form: 'raw', bytes: Buffer.from(text) }])).length;
		expect(inDatabase(stored!.data), 'the encrypted credential row in the database files').toBeGreaterThan(0);
		// ... as were the failed execution's record and the errors answered to forged calls.
		expect(inDatabase('WeChat no longer shortens URLs'), 'the failed execution in the database files').toBeGreaterThan(0);
		expect(provoked.length).toBe(10);

		expect([...scan.hits, ...textHits].map(describeHit)).toEqual([]);
	});
});

describe('teardown', () => {
	it('stops the simulator and removes the user folder', async () => {
		await sim.close();
		fs.rmSync(userFolder, { recursive: true, force: true });
		expect(fs.existsSync(userFolder)).toBe(false);
	});
});
