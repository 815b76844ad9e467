/**
 * Before the queue-mode test: Redis and PostgreSQL (installed with apt-get when missing and running as root),
 * the package build, and Node 24 + n8n in the cache (ensureRuntime, about 5 minutes the first time).
 * When a prerequisite cannot be had, the test is skipped with a SKIP line naming what is missing.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { TestProject } from 'vitest/node';

import { rt } from './cluster';
import { ensurePrerequisites } from './services';

declare module 'vitest' {
	export interface ProvidedContext {
		/** Empty when the queue-mode test can run, else why it is skipped. */
		queueSkipReason: string;
	}
}

function newestMtime(dir: string): number {
	let newest = 0;
	const stack = [dir];
	for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
		const current = stack.pop() as string;
		for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
			const full = path.join(current, entry.name);
			if (entry.isDirectory()) stack.push(full);
			else newest = Math.max(newest, fs.statSync(full).mtimeMs);
		}
	}
	return newest;
}

/** dist/ is built from nodes/ and credentials/: rebuild only when a source is newer than the build output. */
function buildIsCurrent(): boolean {
	const pkg = JSON.parse(fs.readFileSync(path.join(rt.REPO_ROOT, 'package.json'), 'utf8')) as { n8n: { nodes: string[]; credentials: string[] } };
	const outputs = [...pkg.n8n.nodes, ...pkg.n8n.credentials].map((file) => path.join(rt.REPO_ROOT, file));
	if (!outputs.every((file) => fs.existsSync(file))) return false;
	const oldestOutput = Math.min(...outputs.map((file) => fs.statSync(file).mtimeMs));
	const newestSource = Math.max(newestMtime(path.join(rt.REPO_ROOT, 'nodes')), newestMtime(path.join(rt.REPO_ROOT, 'credentials')));
	return newestSource <= oldestOutput;
}

export default async function setup(project: TestProject): Promise<void> {
	const started = Date.now();
	if (process.platform !== 'linux' || process.arch !== 'x64') {
		const reason = `the n8n runtime of this repository is set up for linux x64 only (this is ${process.platform} ${process.arch})`;
		process.stderr.write(`\nSKIP queue-mode test: ${reason}\n\n`);
		project.provide('queueSkipReason', reason);
		return;
	}
	const prereq = await ensurePrerequisites();
	if (prereq.missing.length > 0) {
		const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
		const how = isRoot ? 'apt-get is not available or the install failed' : 'not running as root, so nothing could be installed';
		const reason = `missing ${prereq.missing.join('; ')} (${how}; install with: apt-get update && apt-get install -y redis-server postgresql)`;
		process.stderr.write(`\nSKIP queue-mode test: ${reason}\n\n`);
		project.provide('queueSkipReason', reason);
		return;
	}
	if (buildIsCurrent()) rt.log('dist/ is current, no build needed');
	else await rt.buildPackage();
	const runtime = await rt.ensureRuntime();
	rt.log(`queue-mode prerequisites ready in ${Math.round((Date.now() - started) / 1000)} s: n8n ${runtime.versions.n8n} on Node ${runtime.versions.node}, redis-server ${prereq.redisServer}, postgres ${prereq.postgresBin}`);
	project.provide('queueSkipReason', '');
}
