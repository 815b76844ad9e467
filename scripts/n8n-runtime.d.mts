/** Types of scripts/n8n-runtime.mjs for the TypeScript e2e tests. */
import type { ChildProcess } from 'node:child_process';

export interface Versions {
	n8n: string;
	node: string;
	nativeModules: string[];
}

export interface Runtime {
	root: string;
	nodeBin: string;
	nodeDir: string;
	n8nBin: string;
	n8nDir: string;
	versions: Versions;
}

export interface TrackedChild extends ChildProcess {
	exitPromise: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Instance {
	runtime: Runtime;
	userFolder: string;
	port: number;
	baseUrl: string;
	encryptionKey: string | undefined;
	brokerPort: number;
	/** Where n8nCli() appends each command's output, if set. */
	cliLogFile?: string;
	env(overrides?: { brokerPort?: number; extra?: Record<string, string> }): NodeJS.ProcessEnv;
	server: TrackedChild | null;
}

export interface CliResult {
	code: number | null;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
	ms: number;
}

/** IRun as printed by `n8n execute --rawOutput`. */
export interface RunData {
	status: string;
	mode: string;
	data: {
		resultData: {
			runData: Record<string, Array<{ executionStatus?: string; data?: { main: Array<Array<{ json: Record<string, unknown>; binary?: Record<string, Record<string, unknown>> }> | null> } }>>;
			error?: { message: string; description?: string; [key: string]: unknown };
		};
	};
}

export interface ExecuteResult {
	ok: boolean;
	data: RunData | null;
	error: { message: string; description?: string; [key: string]: unknown } | null;
	stdout: string;
	stderr: string;
	code: number | null;
}

export interface PublicApiExecution {
	id: string;
	status: string;
	mode: string;
	finished: boolean;
	workflowId: string;
	data?: RunData['data'];
}

export const REPO_ROOT: string;
export const PACKAGE_NAME: string;
export const VERSIONS: Versions;
export function setLogger(fn: (line: string) => void): void;
export function log(message: string): void;
export function spawnTracked(command: string, args: string[], options?: object, label?: string): TrackedChild;
export function stopProcess(child: ChildProcess | null | undefined, options?: { graceMs?: number; signal?: NodeJS.Signals }): Promise<void>;
export function trackedPids(): number[];
export function stopAllTracked(): Promise<void>;
export function sleep(ms: number): Promise<void>;
export function run(
	command: string,
	args: string[],
	options?: { cwd?: string; env?: NodeJS.ProcessEnv; stream?: boolean; streamFilter?: (line: string) => boolean; heartbeat?: string; heartbeatMs?: number; timeoutMs?: number; label?: string },
): Promise<CliResult>;
export function n8nEnv(
	runtime: Runtime,
	options: { userFolder: string; port: number; brokerPort: number; encryptionKey?: string; extra?: Record<string, string> },
): NodeJS.ProcessEnv;
export function getFreePort(): Promise<number>;
export function isPortInUse(port: number): Promise<boolean>;
export function cacheDir(): string;
export function assertSupportedPlatform(): void;
export function ensureRuntime(): Promise<Runtime>;
export function buildPackage(options?: { stream?: boolean }): Promise<void>;
export function linkPackage(userFolder: string): string;
export function createInstance(
	runtime: Runtime,
	options: { userFolder: string; port: number; encryptionKey?: string; env?: Record<string, string>; snapshot?: boolean; cliLogFile?: string },
): Promise<Instance>;
export function installPackageSnapshot(userFolder: string, options?: { attempts?: number }): Promise<string>;
export function n8nCli(instance: Instance, args: string[], options?: { timeoutMs?: number; check?: boolean }): Promise<CliResult>;
export function importCredential(instance: Instance, credentials: object | object[]): Promise<CliResult>;
export function importWorkflow(instance: Instance, workflows: object | object[]): Promise<CliResult>;
export function publishWorkflow(instance: Instance, id: string): Promise<CliResult>;
export function parseJsonAfterLogs(stdout: string): unknown;
export function executeWorkflow(instance: Instance, id: string, options?: { timeoutMs?: number }): Promise<ExecuteResult>;
export function exportCredential(instance: Instance, id: string): Promise<{ id: string; name: string; type: string; data: Record<string, unknown> }>;
export function exportNodeTypes(instance: Instance): Promise<string[]>;
export function startN8n(instance: Instance, options?: { logFile?: string; echo?: boolean; readyTimeoutMs?: number }): Promise<TrackedChild>;
export function stopN8n(instance: Instance | null | undefined): Promise<void>;
export function waitForWebhook(url: string, options?: { timeoutMs?: number }): Promise<number>;
export function restRequest(
	instance: Instance,
	method: string,
	route: string,
	options?: { body?: unknown; cookie?: string; apiKey?: string },
): Promise<{ status: number; json: any; text: string; cookie: string }>;
export function ownerSetUp(instance: Instance): Promise<boolean>;
export function setupOwner(instance: Instance, login: { email: string; password: string; firstName?: string; lastName?: string }): Promise<string>;
export function login(instance: Instance, login: { email: string; password: string }): Promise<string>;
export function createApiKey(instance: Instance, cookie: string, options?: { label?: string }): Promise<string>;
export function servedNodeTypes(instance: Instance, cookie: string): Promise<string[]>;
export function listExecutions(
	instance: Instance,
	apiKey: string,
	options?: { workflowId?: string; includeData?: boolean; status?: string },
): Promise<PublicApiExecution[]>;
export function tmpUserFolder(prefix?: string): string;
