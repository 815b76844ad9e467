/**
 * Runs the WeChat Scan Trigger the way n8n's webhook server does: the raw body as `rawBody`, the parsed
 * query, n8n-core's own WebhookContext around the node's `webhook()`, and n8n's rules for what happens next
 * (a returned `workflowData` starts an execution; `noWebhookResponse` means the node answered itself; a throw
 * becomes a 500). `invokeTrigger` does it in process; `startTriggerServer` serves it over real HTTP.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

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


/**
 * What n8n 2.41 sends for responseMode onReceived when the node leaves the answer to it (webhook-helpers'
 * extractWebhookOnReceivedResponse): the description's `responseData` (default the literal
 * "firstEntryJson") wins over the node's `webhookResponse` unless it is empty; "noData" sends nothing.
 */
function onReceivedBody(description: IWebhookDescription, webhookResponse: unknown): string {
	const responseData = description.responseData === undefined ? 'firstEntryJson' : String(description.responseData);
	if (responseData === 'noData') return '';
	if (responseData) return responseData;
	if (webhookResponse !== undefined) return String(webhookResponse);
	return JSON.stringify({ message: 'Workflow was started' });
}

export interface TriggerOptions {
	store: CredentialStore;
	credential: INodeCredentialsDetails;
	parameters?: INode['parameters'];
	/** Distinguishes trigger nodes, so each test gets its own retry memory. */
	nodeId?: string;
}

export interface TriggerRequest {
	method: 'GET' | 'POST';
	query: Record<string, string | string[]>;
	rawBody?: Buffer;
}

export interface TriggerResponse {
	status: number;
	body: string;
	headers: Record<string, string>;
	/** The items of the execution the request started, if it started one. */
	execution?: INodeExecutionData[];
	/** Set when webhook() threw (n8n would answer 500 and record a failed execution). */
	thrown?: Error;
	/** True when the node neither answered nor returned something n8n could answer with. */
	unanswered?: boolean;
}

/** What a response object needs for this node: the parts common to Node's ServerResponse and Express's. */
interface MinimalResponse {
	statusCode: number;
	writableEnded: boolean;
	setHeader(name: string, value: string): void;
	end(body?: string): void;
	once(event: 'finish', listener: () => void): unknown;
}

export interface InvokeOptions {
	/**
	 * n8n fails to store the execution the node asked for (WorkflowRunner.run throws, e.g. the database is
	 * down): n8n then answers 500 "Workflow could not be started!" instead of the node's answer.
	 */
	storeFails?: boolean;
	/** n8n takes this long to store the execution before it answers (a slow database). */
	storeDelayMs?: number;
}

export interface Trigger {
	invoke(request: TriggerRequest, res?: MinimalResponse & { headersOut?: Record<string, string> }, simulate?: InvokeOptions): Promise<TriggerResponse>;
}

let nodeCounter = 0;

export function createTrigger(options: TriggerOptions): Trigger {
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

	return {
		async invoke(request, res = inMemoryResponse(), simulate = {}) {
			const description = descriptions.find((d) => d.httpMethod === request.method);
			if (!description) throw new Error(`no webhook for ${request.method}`);
			const httpRequest = { method: request.method, rawBody: request.rawBody ?? Buffer.alloc(0), query: request.query, body: {}, params: {}, headers: {} };
			const additionalData = testAdditionalData(options.store, { httpRequest: httpRequest as never, httpResponse: res as never });
			const webhookData = {
				httpMethod: description.httpMethod,
				node: node.name,
				path: String(description.path),
				webhookDescription: description,
				workflowId: 'wf-trigger',
				workflowExecuteAdditionalData: additionalData,
			} as IWebhookData;
			const context = new WebhookContext(workflow, node, additionalData, 'webhook', webhookData, [], null);
			const outcome: Omit<TriggerResponse, 'status' | 'body' | 'headers'> = {};
			try {
				const result = await trigger.webhook.call(context as never);
				if (result.workflowData && simulate.storeDelayMs) await sleep(simulate.storeDelayMs);
				if (result.workflowData && simulate.storeFails && !res.writableEnded) {
					res.statusCode = 500;
					res.end(JSON.stringify({ code: 0, message: 'Workflow Webhook Error: Workflow could not be started!' }));
				}
				if (result.workflowData && !simulate.storeFails) outcome.execution = result.workflowData[0];
				if (!result.noWebhookResponse && !res.writableEnded) {
					res.statusCode = 200;
					res.end(onReceivedBody(description, result.webhookResponse));
				}
				if (!res.writableEnded) {
					outcome.unanswered = true;
					res.statusCode = 599;
					res.end('the node did not answer');
				}
			} catch (error) {
				outcome.thrown = error as Error;
				if (!res.writableEnded) {
					res.statusCode = 500;
					res.end('Workflow could not be started');
				}
			}
			const recorded = res as ReturnType<typeof inMemoryResponse>;
			return { status: res.statusCode, body: recorded.bodyOut ?? '', headers: recorded.headersOut ?? {}, ...outcome };
		},
	};
}

/**
 * A response that records what was written, for in-process calls. Like Node's ServerResponse it emits
 * `finish` when it is ended, except after `hangUp()` (the client closed the connection first): then `end()`
 * only marks it ended.
 */
export function inMemoryResponse(): MinimalResponse & { headersOut: Record<string, string>; bodyOut?: string; hangUp(): void } {
	const events = new EventEmitter();
	let hungUp = false;
	return {
		statusCode: 200,
		writableEnded: false,
		headersOut: {},
		setHeader(name, value) {
			this.headersOut[name.toLowerCase()] = value;
		},
		end(body) {
			this.bodyOut = body ?? '';
			this.writableEnded = true;
			if (!hungUp) events.emit('finish');
		},
		hangUp() {
			hungUp = true;
		},
		once(event, listener) {
			events.once(event, listener);
			return this;
		},
	};
}

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

function parseQuery(search: string): Record<string, string | string[]> {
	const query: Record<string, string | string[]> = {};
	for (const [key, value] of new URLSearchParams(search)) {
		const existing = query[key];
		query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
	}
	return query;
}

export async function startTriggerServer(options: TriggerOptions): Promise<TriggerServer> {
	const trigger = createTrigger(options);
	const state: Omit<TriggerServer, 'url' | 'close'> = { executions: [], unanswered: 0, thrownErrors: [] };

	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => {
			if (req.method !== 'GET' && req.method !== 'POST') {
				res.statusCode = 404;
				res.end('not registered');
				return;
			}
			const url = new URL(req.url ?? '/', 'http://127.0.0.1');
			void trigger.invoke({ method: req.method, query: parseQuery(url.search), rawBody: Buffer.concat(chunks) }, res).then((outcome) => {
				if (outcome.execution) state.executions.push(outcome.execution);
				if (outcome.thrown) state.thrownErrors.push(outcome.thrown);
				if (outcome.unanswered) state.unanswered++;
			});
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	return Object.assign(state, {
		url: `http://127.0.0.1:${port}/webhook/b1c2d3e4-0000-4000-8000-000000000001/wechat`,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	});
}
