import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
	resolve: {
		// n8n-core loads n8n-workflow's CommonJS build; the tests must share that one copy, or error classes
		// and the abstract credentials helper would exist twice and `instanceof` would fail.
		alias: [{ find: /^n8n-workflow$/, replacement: fileURLToPath(new URL('./node_modules/n8n-workflow/dist/cjs/index.js', import.meta.url)) }],
	},
	test: {
		include: ['test/**/*.test.ts'],
		// End-to-end tests drive a real n8n and run with `npm run test:e2e`.
		exclude: ['test/e2e/**', 'node_modules/**'],
		testTimeout: 30_000,
		hookTimeout: 30_000,
		reporters: ['default', './test/helpers/unhandledErrorsLast.ts'],
	},
});
