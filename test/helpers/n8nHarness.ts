/**
 * Runs this package's nodes through n8n's own execution engine (n8n-core's WorkflowExecute), with a
 * credentials helper that behaves like n8n's: preAuthentication fills an empty expirable field and the
 * result is written back to the stored credential, which later executions read.
 */
import { createRequire } from 'node:module';

import { ErrorReporter, ExecutionLifecycleHooks, WorkflowExecute } from 'n8n-core';
import {
	ICredentialsHelper,
	LoggerProxy,
	Workflow,
	type ICredentialDataDecryptedObject,
	type ICredentialType,
	type IDataObject,
	type IExecuteData,
	type IHttpRequestHelper,
	type IHttpRequestOptions,
	type INode,
	type INodeCredentialsDetails,
	type INodeExecutionData,
	type INodeProperties,
	type INodeType,
	type INodeTypes,
	type IRun,
	type IRunExecutionData,
	type IWorkflowExecuteAdditionalData,
} from 'n8n-workflow';

import { WeChatOfficialAccountApi } from '../../credentials/WeChatOfficialAccountApi.credentials';
import { WeChatQrCode } from '../../nodes/WeChatQrCode/WeChatQrCode.node';
import { WeChatScanTrigger } from '../../nodes/WeChatScanTrigger/WeChatScanTrigger.node';

export const PACKAGE = 'n8n-nodes-wechat-qrcode';

// n8n-core has its own copies of these two packages: its DI container is the one that counts.
const requireFromCore = createRequire(createRequire(import.meta.url).resolve('n8n-core'));
const { Container } = requireFromCore('@n8n/di') as typeof import('@n8n/di');
const { Logger } = requireFromCore('@n8n/backend-common') as typeof import('@n8n/backend-common');
const { OutboundHttp } = requireFromCore('@n8n/backend-network') as { OutboundHttp: new () => { requests(): N8nHttpClient } };

export interface N8nHttpClient {
	request(options: IHttpRequestOptions): Promise<unknown>;
}

/** n8n's own HTTP client from n8n-core's container: what `helpers.httpRequest` sends through. */
export function n8nHttpClient(): N8nHttpClient {
	return Container.get(OutboundHttp).requests();
}

/** Every line n8n and the nodes log during the tests, so tests can check that no secret reaches a log. */
export const loggedLines: string[] = [];

function capture(level: string) {
	return (message: string, meta?: object) => {
		loggedLines.push(`${level} ${message} ${meta ? JSON.stringify(meta, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v)) : ''}`);
	};
}

const capturingLogger = {
	error: capture('error'),
	warn: capture('warn'),
	info: capture('info'),
	debug: capture('debug'),
	scoped: () => capturingLogger,
};
// n8n logs through LoggerProxy and through the DI Logger (what nodes get as `this.logger`).
LoggerProxy.init(capturingLogger as never);
Container.set(Logger, capturingLogger as unknown as InstanceType<typeof Logger>);

// n8n reports every node failure through its ErrorReporter, which logs the error in full.
Container.set(ErrorReporter, {
	error: (error: unknown, options?: object) => capture('error-reporter')(error instanceof Error ? `${error.message} ${error.stack}` : String(error), options),
	warn: (warning: unknown) => capture('error-reporter')(String(warning)),
	info: (message: unknown) => capture('error-reporter')(String(message)),
} as unknown as ErrorReporter);

interface StoredCredential {
	id: string;
	name: string;
	type: string;
	data: ICredentialDataDecryptedObject;
}

/** In-memory stand-in for n8n's credential table and CredentialsHelper. */
export class CredentialStore extends ICredentialsHelper {
	private readonly credentials = new Map<string, StoredCredential>();
	readonly types = new Map<string, ICredentialType>([['weChatOfficialAccountApi', new WeChatOfficialAccountApi()]]);
	/** Every value written back by preAuthentication, in order. */
	readonly updates: ICredentialDataDecryptedObject[] = [];
	/** How many times a node read a credential. */
	reads = 0;

	add(id: string, type: string, data: ICredentialDataDecryptedObject, name = `${type} ${id}`): INodeCredentialsDetails {
		this.credentials.set(id, { id, name, type, data: { ...data } });
		return { id, name };
	}

	stored(id: string): ICredentialDataDecryptedObject {
		const credential = this.credentials.get(id);
		if (!credential) throw new Error(`No credential ${id}`);
		return { ...credential.data };
	}

	set(id: string, data: ICredentialDataDecryptedObject): void {
		const credential = this.credentials.get(id);
		if (!credential) throw new Error(`No credential ${id}`);
		credential.data = { ...data };
	}

	private withDefaults(type: string, data: ICredentialDataDecryptedObject): ICredentialDataDecryptedObject {
		const result: ICredentialDataDecryptedObject = {};
		for (const property of this.getCredentialsProperties(type)) {
			result[property.name] = property.default as string;
		}
		return { ...result, ...data };
	}

	getCredentialsProperties(type: string): INodeProperties[] {
		return this.types.get(type)?.properties ?? [];
	}

	getParentTypes(): string[] {
		return [];
	}

	async getDecrypted(
		_additionalData: IWorkflowExecuteAdditionalData,
		nodeCredentials: INodeCredentialsDetails,
		type: string,
	): Promise<ICredentialDataDecryptedObject> {
		this.reads++;
		const credential = this.credentials.get(nodeCredentials.id ?? '');
		if (!credential || credential.type !== type) throw new Error(`Credential ${nodeCredentials.id} of type ${type} not found`);
		return this.withDefaults(type, credential.data);
	}

	async getCredentials(): Promise<never> {
		throw new Error('not used by these nodes');
	}

	async updateCredentials(nodeCredentials: INodeCredentialsDetails, type: string, data: ICredentialDataDecryptedObject): Promise<void> {
		const credential = this.credentials.get(nodeCredentials.id ?? '');
		if (!credential || credential.type !== type) throw new Error(`Credential ${nodeCredentials.id} not found`);
		credential.data = { ...data };
		this.updates.push({ ...data });
	}

	async updateCredentialsOauthTokenData(): Promise<void> {}

	async authenticate(
		credentials: ICredentialDataDecryptedObject,
		typeName: string,
		requestOptions: IHttpRequestOptions,
		workflow?: Workflow,
		node?: INode,
	): Promise<IHttpRequestOptions> {
		const authenticate = this.types.get(typeName)?.authenticate;
		if (!authenticate) return requestOptions;
		if (typeof authenticate === 'function') return await authenticate(credentials, requestOptions);
		if (!workflow || !node) throw new Error('workflow and node are required');
		// Resolved through n8n's own expression engine, as n8n does.
		for (const [outerKey, values] of Object.entries(authenticate.properties)) {
			const target = ((requestOptions as unknown as Record<string, IDataObject>)[outerKey] ??= {});
			for (const [key, value] of Object.entries(values as Record<string, string>)) {
				const resolved = workflow.expression.getSimpleParameterValue(node, value, 'internal', { $credentials: credentials }, undefined, '');
				target[key] = resolved === undefined || resolved === null ? '' : String(resolved);
			}
		}
		return requestOptions;
	}

	/** Mirrors n8n's CredentialsHelper.preAuthentication: only for an empty expirable field or an expired one. */
	async preAuthentication(
		helpers: IHttpRequestHelper,
		credentials: ICredentialDataDecryptedObject,
		typeName: string,
		node: INode,
		credentialsExpired: boolean,
	): Promise<ICredentialDataDecryptedObject | undefined> {
		const type = this.types.get(typeName);
		const expirable = type?.properties.find((p) => p.type === 'hidden' && p.typeOptions?.expirable === true);
		if (!type?.preAuthentication || !expirable) return undefined;
		if (credentials[expirable.name] !== '' && !credentialsExpired) return undefined;
		const output = await type.preAuthentication.call(helpers, credentials);
		if (output[expirable.name] === undefined) return undefined;
		const nodeCredentials = node.credentials?.[typeName];
		if (!nodeCredentials) return undefined;
		const stored = this.credentials.get(nodeCredentials.id ?? '');
		if (!stored) throw new Error('credential vanished');
		await this.updateCredentials(nodeCredentials, typeName, { ...stored.data, ...output } as ICredentialDataDecryptedObject);
		return Object.assign(credentials, output);
	}

	async runPreAuthentication(): Promise<undefined> {
		return undefined;
	}

	isCredentialUsableByNode(): boolean {
		return true;
	}
}

class NodeTypes implements INodeTypes {
	private readonly types: Record<string, INodeType> = {
		[`${PACKAGE}.weChatQrCode`]: new WeChatQrCode(),
		[`${PACKAGE}.weChatScanTrigger`]: new WeChatScanTrigger(),
	};

	getByName(type: string): INodeType {
		const nodeType = this.types[type];
		if (!nodeType) throw new Error(`Unknown node type ${type}`);
		return nodeType;
	}

	getByNameAndVersion(type: string): INodeType {
		return this.getByName(type);
	}

	getKnownTypes() {
		return {};
	}
}

export const nodeTypes = new NodeTypes();

export interface RunNodeOptions {
	store: CredentialStore;
	credential: INodeCredentialsDetails;
	parameters: INode['parameters'];
	items?: INodeExecutionData[];
	continueOnFail?: boolean;
	/** n8n's "On Error" setting; overrides `continueOnFail` (which picks continueRegularOutput). */
	onError?: INode['onError'];
	type?: string;
}

export interface NodeRunResult {
	run: IRun;
	/** The node's output items (first output), or undefined when the node failed. */
	items: INodeExecutionData[] | undefined;
	/** Every output of the node (with onError continueErrorOutput, the second one is the error output). */
	outputs: INodeExecutionData[][] | undefined;
	/** The node's error when it failed as a whole. */
	error: (Error & { description?: string; httpCode?: string; context?: IDataObject }) | undefined;
}

/** The parts of n8n's additional data that these nodes reach; the rest throws when touched. */
export function testAdditionalData(store: CredentialStore, extra: Partial<IWorkflowExecuteAdditionalData> = {}): IWorkflowExecuteAdditionalData {
	return {
		credentialsHelper: store,
		restApiUrl: 'http://127.0.0.1:5678/rest',
		instanceBaseUrl: 'http://127.0.0.1:5678/',
		webhookBaseUrl: 'http://127.0.0.1:5678/webhook',
		webhookWaitingBaseUrl: 'http://127.0.0.1:5678/webhook-waiting',
		webhookTestBaseUrl: 'http://127.0.0.1:5678/webhook-test',
		formWaitingBaseUrl: 'http://127.0.0.1:5678/form-waiting',
		currentNodeParameters: undefined,
		executionTimeoutTimestamp: undefined,
		userId: 'test-user',
		variables: {},
		logAiEvent: () => undefined,
		setExecutionStatus: () => undefined,
		sendDataToUI: () => undefined,
		startRunnerTask: async () => {
			throw new Error('no task runner in tests');
		},
		executeWorkflow: async () => {
			throw new Error('sub-workflows are not used');
		},
		getRunExecutionData: async () => undefined,
		...extra,
	} as unknown as IWorkflowExecuteAdditionalData;
}

let executionCounter = 0;

/** Executes one node of this package as the first node of a workflow, fed with `items`. */
export async function runNode(options: RunNodeOptions): Promise<NodeRunResult> {
	const onError = options.onError ?? (options.continueOnFail ? 'continueRegularOutput' : 'stopWorkflow');
	const node: INode = {
		id: 'node-under-test',
		name: 'Node Under Test',
		type: options.type ?? `${PACKAGE}.weChatQrCode`,
		typeVersion: 1,
		position: [0, 0],
		parameters: options.parameters,
		credentials: { weChatOfficialAccountApi: options.credential },
		continueOnFail: onError !== 'stopWorkflow',
		onError,
	};
	const workflow = new Workflow({ id: 'wf-test', nodes: [node], connections: {}, nodeTypes, active: false });

	const executionId = String(++executionCounter);
	const hooks = new ExecutionLifecycleHooks('manual', executionId, {
		id: 'wf-test',
		name: 'test',
		active: false,
		activeVersionId: null,
		isArchived: false,
		createdAt: new Date(),
		updatedAt: new Date(),
		nodes: [node],
		connections: {},
	} as never);
	let resolveRun: (run: IRun) => void = () => undefined;
	const finished = new Promise<IRun>((resolve) => (resolveRun = resolve));
	hooks.addHandler('workflowExecuteAfter', (run) => resolveRun(run));

	const additionalData = testAdditionalData(options.store, { hooks, executionId });

	const startData: IExecuteData = {
		node,
		data: { main: [options.items ?? [{ json: {} }]] },
		source: null,
	};
	const runExecutionData: IRunExecutionData = {
		startData: {},
		resultData: { runData: {} },
		executionData: {
			contextData: {},
			metadata: {},
			nodeExecutionStack: [startData],
			waitingExecution: {},
			waitingExecutionSource: null,
		},
	} as IRunExecutionData;

	const workflowExecute = new WorkflowExecute(additionalData, 'manual', runExecutionData);
	await workflowExecute.processRunExecutionData(workflow);
	const run = await finished;
	const nodeRun = run.data.resultData.runData[node.name]?.[0];
	return {
		run,
		items: nodeRun?.data?.main?.[0] ?? undefined,
		outputs: (nodeRun?.data?.main as INodeExecutionData[][] | undefined) ?? undefined,
		error: (nodeRun?.error ?? run.data.resultData.error) as NodeRunResult['error'],
	};
}
