import { defineConfig } from 'vitest/config';

// End-to-end tests: a real n8n (Node 24, installed into the cache by test/e2e/globalSetup.ts) with this
// package installed, driven through its CLI, REST API and production webhooks. One file at a time, one fork.
export default defineConfig({
	test: {
		include: ['test/e2e/**/*.e2e.test.ts'],
		globalSetup: ['test/e2e/globalSetup.ts'],
		fileParallelism: false,
		maxWorkers: 1,
		pool: 'forks',
		// The first run installs n8n (~5 min) in globalSetup; each test starts n8n CLI commands (~5-10 s each).
		testTimeout: 300_000,
		hookTimeout: 600_000,
		teardownTimeout: 60_000,
		reporters: ['verbose', './test/helpers/unhandledErrorsLast.ts'],
	},
});
