/**
 * The parts of scripts/n8n-runtime.mjs (owned elsewhere, still changing) this test uses, typed here so a
 * small change there shows up in one place.
 */
import * as runtimeModule from '../../scripts/n8n-runtime.mjs';

export interface TrackedChild {
	pid?: number;
	exitCode: number | null;
	signalCode: NodeJS.Signals | null;
	exitPromise: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Runtime {
	nodeBin: string;
	n8nBin: string;
	n8nDir: string;
	root: string;
	versions: { n8n: string; node: string };
}

export interface Instance {
	runtime: Runtime;
	userFolder: string;
	port: number;
	baseUrl: string;
	brokerPort: number;
	server: TrackedChild | null;
	env(overrides?: { brokerPort?: number; extra?: Record<string, string> }): NodeJS.ProcessEnv;
}

export interface RunResult {
	code: number | null;
	signal: string | null;
	stdout: string;
	stderr: string;
	ms: number;
}

export const rt = runtimeModule as unknown as {
	REPO_ROOT: string;
	ensureRuntime: () => Promise<Runtime>;
	buildPackage: (options?: { stream?: boolean }) => Promise<void>;
	createInstance: (runtime: Runtime, options: { userFolder: string; port: number; encryptionKey: string; env?: Record<string, string> }) => Promise<Instance>;
	importCredential: (instance: Instance, credentials: unknown) => Promise<unknown>;
	importWorkflow: (instance: Instance, workflows: unknown) => Promise<unknown>;
	publishWorkflow: (instance: Instance, id: string) => Promise<unknown>;
	exportCredential: (instance: Instance, id: string) => Promise<{ data: Record<string, unknown> }>;
	startN8n: (instance: Instance, options: { logFile?: string; echo?: boolean; readyTimeoutMs?: number }) => Promise<TrackedChild>;
	stopN8n: (instance: Instance) => Promise<void>;
	spawnTracked: (command: string, args: string[], options: object, label?: string) => TrackedChild;
	stopProcess: (child: TrackedChild, options?: { graceMs?: number; signal?: NodeJS.Signals }) => Promise<void>;
	stopAllTracked: () => Promise<void>;
	trackedPids: () => number[];
	getFreePort: () => Promise<number>;
	run: (
		command: string,
		args: string[],
		options: { cwd?: string; env?: NodeJS.ProcessEnv; stream?: boolean; heartbeat?: string; timeoutMs?: number; label?: string },
	) => Promise<RunResult>;
	setupOwner: (instance: Instance, options: { email: string; password: string }) => Promise<string>;
	createApiKey: (instance: Instance, cookie: string) => Promise<string>;
	restRequest: (
		instance: Instance,
		method: string,
		route: string,
		options?: { body?: unknown; cookie?: string; apiKey?: string },
	) => Promise<{ status: number; json: unknown; text: string }>;
	log: (message: string) => void;
	sleep: (ms: number) => Promise<void>;
};

const missing = Object.entries(rt).length === 0 ? ['(module is empty)'] : [];
for (const name of ['ensureRuntime', 'createInstance', 'importCredential', 'importWorkflow', 'publishWorkflow', 'startN8n', 'stopN8n', 'spawnTracked', 'stopProcess', 'stopAllTracked', 'getFreePort', 'run', 'setupOwner', 'createApiKey', 'restRequest', 'exportCredential', 'buildPackage']) {
	if (typeof (rt as unknown as Record<string, unknown>)[name] !== 'function') missing.push(name);
}
if (missing.length > 0) {
	throw new Error(`scripts/n8n-runtime.mjs no longer exports ${missing.join(', ')}: adapt test/queue/runtime.ts`);
}
