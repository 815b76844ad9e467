/**
 * Runs once before the e2e files: builds the package and makes sure Node 24 + n8n are in the cache
 * (first time about 5 minutes, with a progress line every 10 s; later runs only check the marker file).
 */
import { buildPackage, ensureRuntime, log } from '../../scripts/n8n-runtime.mjs';

export default async function setup(): Promise<void> {
	const started = Date.now();
	await buildPackage();
	const runtime = await ensureRuntime();
	log(`runtime ready in ${Math.round((Date.now() - started) / 1000)} s: n8n ${runtime.versions.n8n} on Node ${runtime.versions.node} (${runtime.root})`);
}
