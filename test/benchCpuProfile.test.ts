/**
 * Benchmark 4's `--profile` table says which package spent n8n's time. These tests pin its attribution
 * rules on a small hand-made V8 profile: builtins are charged to their caller's package, the profiler's own
 * start-up is kept apart, and V8's entries keep their names.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { IDLE, placeOf, PROFILER, timeByPlace } from './bench/lib/cpuProfile';

const OWN = 'n8n-nodes-wechat-qrcode';
const N8N = 'file:///srv/n8n/node_modules';

interface Frame {
	id: number;
	functionName: string;
	url: string;
	children?: number[];
}

function writeProfile(frames: Frame[], samples: Array<[id: number, microseconds: number]>): string {
	const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cpuprofile-')), 'test.cpuprofile');
	const profile = {
		nodes: frames.map(({ id, functionName, url, children }) => ({ id, callFrame: { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 }, children })),
		startTime: 0,
		endTime: samples.reduce((sum, [, us]) => sum + us, 0),
		samples: samples.map(([id]) => id),
		timeDeltas: samples.map(([, us]) => us),
	};
	fs.writeFileSync(file, JSON.stringify(profile));
	created.push(path.dirname(file));
	return file;
}

const created: string[] = [];
afterEach(() => {
	for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('placeOf', () => {
	it('names the package a source file belongs to, scoped packages included', () => {
		expect(placeOf(`${N8N}/@n8n/typeorm/dist/query-builder/SelectQueryBuilder.js`, OWN)).toBe('@n8n/typeorm');
		expect(placeOf(`${N8N}/n8n/dist/webhooks/live-webhooks.js`, OWN)).toBe('n8n');
		// A package nested in another's node_modules is the inner one.
		expect(placeOf(`${N8N}/n8n-core/node_modules/axios/dist/node/axios.cjs`, OWN)).toBe('axios');
	});

	it('recognises this package, Node.js modules and files outside any package', () => {
		expect(placeOf(`file:///home/me/.n8n/nodes/node_modules/${OWN}/dist/nodes/x.js`, OWN)).toBe('this package');
		expect(placeOf('node:internal/streams/readable', OWN)).toBe('Node.js: internal');
		expect(placeOf('node:net', OWN)).toBe('Node.js: net');
		expect(placeOf('file:///srv/app/main.js', OWN)).toBe('other (no package)');
		expect(placeOf('', OWN)).toBeNull();
	});
});

describe('timeByPlace', () => {
	it("charges a builtin to its caller's package and keeps V8's own entries apart", () => {
		const file = writeProfile(
			[
				{ id: 1, functionName: '(root)', url: '', children: [2, 5, 6, 7] },
				{ id: 2, functionName: 'executeWebhook', url: `${N8N}/n8n/dist/webhooks/live-webhooks.js`, children: [3] },
				{ id: 3, functionName: 'webhook', url: `${N8N}/${OWN}/dist/nodes/WeChatScanTrigger.node.js`, children: [4] },
				{ id: 4, functionName: 'JSON.stringify', url: '' },
				{ id: 5, functionName: '(garbage collector)', url: '' },
				{ id: 6, functionName: '(idle)', url: '' },
				{ id: 7, functionName: 'orphanNative', url: '' },
			],
			[
				[2, 1000],
				[4, 3000],
				[3, 500],
				[5, 2000],
				[6, 10_000],
				[7, 250],
			],
		);
		expect(timeByPlace(file, OWN)).toEqual({
			n8n: 1,
			'this package': 3.5,
			'V8: garbage collector': 2,
			[IDLE]: 10,
			'native: orphanNative': 0.25,
		});
	});

	it("puts everything the profiler's start-up called under the profiler, Node's inspector included", () => {
		const file = writeProfile(
			[
				{ id: 1, functionName: '(root)', url: '', children: [2, 4] },
				{ id: 2, functionName: 'post', url: 'file:///repo/test/bench/lib/n8nProfiler.cjs', children: [3] },
				{ id: 3, functionName: 'post', url: 'node:inspector' },
				{ id: 4, functionName: 'onconnection', url: 'node:net' },
			],
			[
				[3, 800_000],
				[4, 1000],
			],
		);
		expect(timeByPlace(file, OWN)).toEqual({ [PROFILER]: 800, 'Node.js: net': 1 });
	});
});
