/**
 * Serves the WeChat Scan Trigger over real HTTP on 127.0.0.1 the way n8n's webhook server does: the raw
 * body as `rawBody`, the parsed query, n8n-core's own WebhookContext around the node's `webhook()`, and n8n's
 * rules for what happens next (a returned `workflowData` starts an execution; `noWebhookResponse` means the
 * node answered itself; a throw becomes a 500).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { WebhookContext } from 'n8n-core';
import {
	Workflow,
	type INode,
	type INodeCredentialsDetails,
	type INodeExecutionData,
	type IWebhookData,
	type IWebhookDescription,
} from 'n8n-workflow';

import { WeChatScanTrigger } from '../../nodes/WeChatScanTrigger/WeChatScanTrigger.node';
import { CredentialStore, nodeTypes, PACKAGE, testAdditionalData } from './n8nHarness';

export interface TriggerServer {
	/** The production URL of the trigger's webhook (GET and POST). */
	url: string;
	/** The items of every execution the trigger started, in order. */
	executions: INodeExecutionData[][];
	/** Requests the node let hang without an answer (must stay 0). */
	unanswered: number;
	/** Errors thrown out of webhook() (n8n would answer 500 and record a failed execution). */
	thrownErrors: Error[];
	close(): Promise<void>;
}

export interface TriggerServerOptions {
	store: CredentialStore;
	credential: INodeCredentialsDetails;
	parameters?: INode['parameters'];
	/** Distinguishes trigger nodes, so each test gets its own retry memory. */
	nodeId?: string;
}

function parseQuery(search: string): Record<string, string | string[]> {
	const query: Record<string, string | string[]> = {};
	for (const [key, value] of new URLSearchParams(search)) {
		const existing = query[key];
		query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
	}
	return query;
}

let nodeCounter = 0;

export async function startTriggerServer(options: TriggerServerOptions): Promise<TriggerServer> {
	const trigger = new WeChatScanTrigger();
	const node: INode = {
		id: options.nodeId ?? `trigger-${++nodeCounter}-${Date.now()}`,
		name: 'WeChat Scan Trigger',
		type: `${PACKAGE}.weChatScanTrigger`,
		typeVersion: 1,
		position: [0, 0],
		webhookId: 'b1c2d3e4-0000-4000-8000-000000000001',
		parameters: { events: ['subscribeScene', 'scan'], sceneFilter: '', options: {}, ...options.parameters },
		credentials: { weChatOfficialAccountApi: options.credential },
	};
	const workflow = new Workflow({ id: 'wf-trigger', nodes: [node], connections: {}, nodeTypes, active: true });
	const descriptions = trigger.description.webhooks as IWebhookDescription[];
	const state: Omit<TriggerServer, 'url' | 'close'> = { executions: [], unanswered: 0, thrownErrors: [] };

	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => {
			void (async () => {
				const url = new URL(req.url ?? '/', 'http://127.0.0.1');
				const description = descriptions.find((d) => d.httpMethod === req.method);
				if (!description) {
					res.statusCode = 404;
					res.end('not registered');
					return;
				}
				const request = Object.assign(req, { rawBody: Buffer.concat(chunks), query: parseQuery(url.search), body: {}, params: {} });
				const additionalData = testAdditionalData(options.store, {
					httpRequest: request as never,
					httpResponse: res as never,
				});
				const webhookData = {
					httpMethod: description.httpMethod,
					node: node.name,
					path: String(description.path),
					webhookDescription: description,
					workflowId: 'wf-trigger',
					workflowExecuteAdditionalData: additionalData,
				} as IWebhookData;
				const context = new WebhookContext(workflow, node, additionalData, 'webhook', webhookData, [], null);
				try {
					const result = await trigger.webhook.call(context as never);
					if (result.workflowData) state.executions.push(result.workflowData[0]);
					if (!result.noWebhookResponse && !res.writableEnded) {
						// n8n's default for responseMode onReceived: the literal responseData, firstEntryJson.
						res.statusCode = 200;
						res.end(result.webhookResponse === undefined ? 'firstEntryJson' : String(result.webhookResponse));
					}
					if (!res.writableEnded) {
						state.unanswered++;
						res.statusCode = 599;
						res.end('the node did not answer');
					}
				} catch (error) {
					state.thrownErrors.push(error as Error);
					if (!res.writableEnded) {
						res.statusCode = 500;
						res.end('Workflow could not be started');
					}
				}
			})();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	return Object.assign(state, {
		url: `http://127.0.0.1:${port}/webhook/${node.webhookId}/wechat`,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	});
}
