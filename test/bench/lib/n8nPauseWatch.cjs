/**
 * Preloaded into n8n's processes by benchmark 4 (NODE_OPTIONS=--require), so that the benchmark can tell
 * which windows had n8n stop answering for a while and why. It records every pause of the process's event
 * loop of 50 ms or more ("pause <end, epoch ms> <ms>") and every garbage collection of 20 ms or more
 * ("gc <start, epoch ms> <ms>"), one file per process in N8N_PAUSE_LOG_DIR.
 */
const fs = require('node:fs');
const path = require('node:path');
const { PerformanceObserver, performance } = require('node:perf_hooks');

const dir = process.env.N8N_PAUSE_LOG_DIR;
if (dir) {
	const file = path.join(dir, `pauses-${process.pid}.log`);
	const TICK_MS = 10;
	new PerformanceObserver((list) => {
		for (const entry of list.getEntries()) {
			if (entry.duration >= 20) fs.appendFileSync(file, `gc ${Math.round(performance.timeOrigin + entry.startTime)} ${Math.round(entry.duration)}\n`);
		}
	}).observe({ entryTypes: ['gc'] });
	let last = performance.now();
	setInterval(() => {
		const now = performance.now();
		const pause = now - last - TICK_MS;
		if (pause >= 50) fs.appendFileSync(file, `pause ${Math.round(performance.timeOrigin + now)} ${Math.round(pause)}\n`);
		last = now;
	}, TICK_MS).unref();
}
