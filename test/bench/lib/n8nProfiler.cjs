/**
 * Preloaded into n8n's main process by `npm run bench -- --only 4 --profile` (NODE_OPTIONS=--require): each
 * SIGUSR2 starts a CPU profile of the process, the next one stops it and writes it to N8N_PROFILE_DIR as
 * `<pid>-<n>.cpuprofile` (renamed into place once complete), so the benchmark can profile one window at a
 * time in the same n8n. Starting takes V8 about a second of blocked event loop (it records every compiled
 * function), so the file `<pid>.started` tells the benchmark when the profiler runs and its window may
 * begin. Only the process started as `n8n start` listens; its children ignore the variable.
 */
const fs = require('node:fs');
const inspector = require('node:inspector');
const path = require('node:path');

const dir = process.env.N8N_PROFILE_DIR;
if (dir && process.argv.slice(2).includes('start')) {
	const session = new inspector.Session();
	session.connect();
	let profiling = false;
	let written = 0;
	const post = (method, params) =>
		new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
	process.on('SIGUSR2', () => {
		if (!profiling) {
			profiling = true;
			void post('Profiler.enable')
				.then(() => post('Profiler.start'))
				.then(() => fs.writeFileSync(path.join(dir, `${process.pid}.started`), ''));
			return;
		}
		profiling = false;
		void post('Profiler.stop').then(({ profile }) => {
			const file = path.join(dir, `${process.pid}-${++written}.cpuprofile`);
			fs.writeFileSync(`${file}.part`, JSON.stringify(profile));
			fs.renameSync(`${file}.part`, file);
		});
	});
}
