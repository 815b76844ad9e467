/** Types of the demo helpers exported by scripts/start.mjs. */
import type { TrackedChild } from './n8n-runtime.mjs';

export interface DemoCredential {
	id: string;
	name: string;
	type: string;
	data: Record<string, string>;
}

export interface DemoWorkflow {
	id: string;
	name: string;
	nodes: Array<{ id: string; name: string; type: string; typeVersion: number; position: number[]; parameters: Record<string, unknown>; webhookId?: string; credentials?: Record<string, { id: string; name: string }> }>;
	connections: Record<string, { main: Array<Array<{ node: string; type: string; index: number }>> }>;
	settings?: Record<string, unknown>;
	[key: string]: unknown;
}

export const DEMO_ENCRYPTION_KEY: string;
export const DEMO_LOGIN: { email: string; password: string; firstName: string; lastName: string };
export const DEMO_DIR: string;
export const WEBHOOK_PATH: string;
export function loadDemo(): { credential: DemoCredential; createCodes: DemoWorkflow; scanTrigger: DemoWorkflow; webhookId: string };
export function demoCredentialFor(credential: DemoCredential, simulator: { url: string; appId: string; appSecret: string }): DemoCredential;
export function startSimulatorProcess(port: number): Promise<{ child: TrackedChild; url: string; appId: string; appSecret: string }>;
