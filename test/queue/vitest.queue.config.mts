import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:queue`: n8n 2.41.1 in queue mode (main + webhook process + 2 workers) on a throwaway Redis
// and PostgreSQL, with this package installed. One file, one fork; the run takes several minutes.
export default defineConfig({
	resolve: {
		// Same single copy of n8n-workflow as the unit tests (the push builder reuses the trigger's helpers).
		alias: [{ find: /^n8n-workflow$/, replacement: fileURLToPath(new URL('../../node_modules/n8n-workflow/dist/cjs/index.js', import.meta.url)) }],
	},
	test: {
		include: ['test/queue/**/*.queue.ts'],
		globalSetup: ['test/queue/globalSetup.ts'],
		fileParallelism: false,
		maxWorkers: 1,
		pool: 'forks',
		testTimeout: 600_000,
		hookTimeout: 900_000,
		teardownTimeout: 120_000,
		reporters: ['verbose', './test/helpers/unhandledErrorsLast.ts'],
	},
});
