/** The credential and the three workflows the queue-mode test imports into n8n. */
import { randomBase62 } from '../simulator/random';

export const CREDENTIAL_ID = 'qmWeChatCred0001';
export const CREDENTIAL_NAME = 'WeChat (queue-mode test simulator)';
const credentialRef = { weChatOfficialAccountApi: { id: CREDENTIAL_ID, name: CREDENTIAL_NAME } };

/** The server-configuration Token and EncodingAESKey the pushes are signed and encrypted with: fresh per run. */
export const PUSH_TOKEN = `qm${randomBase62(16)}`;
export const ENCODING_AES_KEY = randomBase62(43);

export function credential(simulator: { url: string; appId: string; appSecret: string }) {
	return {
		id: CREDENTIAL_ID,
		name: CREDENTIAL_NAME,
		type: 'weChatOfficialAccountApi',
		data: {
			appId: simulator.appId,
			appSecret: simulator.appSecret,
			token: PUSH_TOKEN,
			encodingAESKey: ENCODING_AES_KEY,
			previousEncodingAESKey: '',
			apiBaseUrl: simulator.url,
			mpBaseUrl: simulator.url,
			// Empty: the first WeChat call of the run fetches the stable token (no pre-warming).
			accessToken: '',
		},
	};
}

export const BULK = {
	id: 'qmBulkCreate0001',
	path: 'qm-bulk-create',
	itemsPerExecution: 50,
	concurrency: 5,
	qrNode: 'Create QR Ticket',
	codeNode: 'Make 50 scenes',
};

export const SCAN = {
	id: 'qmScanTrigger001',
	webhookId: '3c5e1a7b-2f4d-4e8a-9b1c-6d2e8f0a4b71',
	trigger: 'WeChat Scan Trigger',
};

export const SLOW_SCAN = {
	id: 'qmSlowScan000001',
	webhookId: '8a1d4c2e-6b3f-4a7d-8e5c-1f9b2d7a3c60',
	trigger: 'WeChat Scan Trigger',
	qrNode: 'Create QR Ticket',
};

export function triggerPath(webhookId: string): string {
	return `/webhook/${webhookId}/wechat`;
}

const settings = { executionOrder: 'v1', saveDataSuccessExecution: 'all', saveDataErrorExecution: 'all' };

/** Webhook (POST, answers with the last node) → Code: 50 scenes → WeChat QR Code createTicket (concurrency 5) → Code: summary. */
export function bulkCreateWorkflow() {
	return {
		id: BULK.id,
		name: 'Queue mode: bulk create',
		active: false,
		nodes: [
			{
				id: '0f6f3a52-8d71-4c1e-9a55-1b7f0c2d9e01',
				name: 'Webhook',
				type: 'n8n-nodes-base.webhook',
				typeVersion: 2,
				position: [0, 0],
				webhookId: '5b0e9c3d-7a42-4f18-b6d1-2c8e4a9f7d02',
				parameters: { httpMethod: 'POST', path: BULK.path, responseMode: 'lastNode', responseData: 'firstEntryJson', options: {} },
			},
			{
				id: '0f6f3a52-8d71-4c1e-9a55-1b7f0c2d9e02',
				name: BULK.codeNode,
				type: 'n8n-nodes-base.code',
				typeVersion: 2,
				position: [220, 0],
				parameters: {
					jsCode: `const batch = String($input.first().json.body.batch);\nreturn Array.from({ length: ${BULK.itemsPerExecution} }, (_, i) => ({ json: { batch, scene: 'qm_' + batch + '_' + i } }));`,
				},
			},
			{
				id: '0f6f3a52-8d71-4c1e-9a55-1b7f0c2d9e03',
				name: BULK.qrNode,
				type: 'n8n-nodes-wechat-qrcode.weChatQrCode',
				typeVersion: 1,
				position: [440, 0],
				parameters: {
					resource: 'qrCode',
					operation: 'createTicket',
					qrType: 'temporary',
					sceneType: 'string',
					sceneStr: '={{ $json.scene }}',
					expireSeconds: 3600,
					options: { concurrency: BULK.concurrency },
				},
				credentials: credentialRef,
			},
			{
				id: '0f6f3a52-8d71-4c1e-9a55-1b7f0c2d9e04',
				name: 'Summary',
				type: 'n8n-nodes-base.code',
				typeVersion: 2,
				position: [660, 0],
				parameters: {
					jsCode:
						"const items = $input.all();\nreturn [{ json: { batch: items[0]?.json.batch ?? null, items: items.length, tickets: items.filter((item) => typeof item.json.ticket === 'string' && item.json.ticket.length > 0).length } }];",
				},
			},
		],
		connections: {
			Webhook: { main: [[{ node: BULK.codeNode, type: 'main', index: 0 }]] },
			[BULK.codeNode]: { main: [[{ node: BULK.qrNode, type: 'main', index: 0 }]] },
			[BULK.qrNode]: { main: [[{ node: 'Summary', type: 'main', index: 0 }]] },
		},
		settings,
		pinData: {},
	};
}

/** WeChat Scan Trigger (subscribe via QR + scan) → No Operation. */
export function scanWorkflow() {
	return {
		id: SCAN.id,
		name: 'Queue mode: scan trigger',
		active: false,
		nodes: [
			{
				id: '1a2b3c4d-0000-4e5f-8a9b-000000000001',
				name: SCAN.trigger,
				type: 'n8n-nodes-wechat-qrcode.weChatScanTrigger',
				typeVersion: 1,
				position: [0, 0],
				webhookId: SCAN.webhookId,
				parameters: { events: ['subscribeScene', 'scan'], sceneFilter: '', options: {} },
				credentials: credentialRef,
			},
			{
				id: '1a2b3c4d-0000-4e5f-8a9b-000000000002',
				name: 'Done',
				type: 'n8n-nodes-base.noOp',
				typeVersion: 1,
				position: [220, 0],
				parameters: {},
			},
		],
		connections: { [SCAN.trigger]: { main: [[{ node: 'Done', type: 'main', index: 0 }]] } },
		settings,
		pinData: {},
	};
}

/** WeChat Scan Trigger → WeChat QR Code createTicket for the scanned scene (slow while the simulator is slowed down). */
export function slowScanWorkflow() {
	return {
		id: SLOW_SCAN.id,
		name: 'Queue mode: scan then call WeChat',
		active: false,
		nodes: [
			{
				id: '2b3c4d5e-0000-4f6a-9b8c-000000000001',
				name: SLOW_SCAN.trigger,
				type: 'n8n-nodes-wechat-qrcode.weChatScanTrigger',
				typeVersion: 1,
				position: [0, 0],
				webhookId: SLOW_SCAN.webhookId,
				parameters: { events: ['subscribeScene', 'scan'], sceneFilter: '', options: {} },
				credentials: credentialRef,
			},
			{
				id: '2b3c4d5e-0000-4f6a-9b8c-000000000002',
				name: SLOW_SCAN.qrNode,
				type: 'n8n-nodes-wechat-qrcode.weChatQrCode',
				typeVersion: 1,
				position: [220, 0],
				parameters: {
					resource: 'qrCode',
					operation: 'createTicket',
					qrType: 'temporary',
					sceneType: 'string',
					sceneStr: '={{ "followup_" + $json.scene }}',
					expireSeconds: 3600,
					options: { concurrency: 1 },
				},
				credentials: credentialRef,
			},
		],
		connections: { [SLOW_SCAN.trigger]: { main: [[{ node: SLOW_SCAN.qrNode, type: 'main', index: 0 }]] } },
		settings,
		pinData: {},
	};
}
