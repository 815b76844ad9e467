/**
 * Reads a V8 CPU profile (`.cpuprofile`, as n8nProfiler.cjs writes it) and says where the time went, by the
 * package that spent it. A function without a source (a builtin such as JSON.stringify or a native binding)
 * is charged to the package of its nearest caller that has one, so the time lands with the code that asked
 * for the work.
 */
import fs from 'node:fs';

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string };
	children?: number[];
}

interface Profile {
	nodes: ProfileNode[];
	samples: number[];
	timeDeltas: number[];
}

/** Milliseconds of CPU per place (package, Node.js module, or V8's own entries such as the GC). */
export type TimeByPlace = Record<string, number>;

export const IDLE = '(idle)';
/** The profiler's own start-up (n8nProfiler.cjs), before the window's load begins. */
export const PROFILER = '(the profiler)';

const ROOT = 'V8: (root)';
const SPECIAL: Record<string, string> = {
	'(garbage collector)': 'V8: garbage collector',
	'(program)': 'V8: (program)',
	'(idle)': IDLE,
	'(root)': ROOT,
};

/** `node_modules/@scope/name/…` → `@scope/name`; `node:fs` → `Node.js: fs`; this repository's files → `this package`. */
export function placeOf(url: string, ownPackage: string): string | null {
	if (url === '') return null;
	if (url.endsWith('/n8nProfiler.cjs')) return PROFILER;
	if (url.startsWith('node:')) return `Node.js: ${url.slice('node:'.length).split('/')[0]}`;
	const marker = '/node_modules/';
	const at = url.lastIndexOf(marker);
	if (at !== -1) {
		const [first, second] = url.slice(at + marker.length).split('/');
		const name = first.startsWith('@') ? `${first}/${second}` : first;
		return name === ownPackage ? 'this package' : name;
	}
	if (url.includes(`/${ownPackage}/`)) return 'this package';
	return 'other (no package)';
}

export function timeByPlace(file: string, ownPackage: string): TimeByPlace {
	const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
	const byId = new Map(profile.nodes.map((node) => [node.id, node]));
	const parentOf = new Map<number, number>();
	for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

	const placeCache = new Map<number, string>();
	const place = (id: number): string => {
		const cached = placeCache.get(id);
		if (cached !== undefined) return cached;
		const node = byId.get(id);
		let found = ROOT;
		if (node) {
			const { functionName, url } = node.callFrame;
			const parent = parentOf.get(id);
			const parentPlace = parent === undefined ? ROOT : place(parent);
			// Everything the profiler's own start-up called (V8's inspector included) is the profiler's.
			if (parentPlace === PROFILER) found = PROFILER;
			else found = SPECIAL[functionName] ?? placeOf(url, ownPackage) ?? (parentPlace === ROOT ? `native: ${functionName || '(anonymous)'}` : parentPlace);
		}
		placeCache.set(id, found);
		return found;
	};

	const totals: TimeByPlace = {};
	for (let i = 0; i < profile.samples.length; i++) {
		const where = place(profile.samples[i]);
		totals[where] = (totals[where] ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000;
	}
	return totals;
}

export function addTimes(into: TimeByPlace, from: TimeByPlace): TimeByPlace {
	for (const [where, ms] of Object.entries(from)) into[where] = (into[where] ?? 0) + ms;
	return into;
}
