/**
 * A vitest reporter that repeats each unhandled error (message and its first stack lines) after the run's
 * summary. CI logs are often read from their tail, and vitest prints these errors above the summary, so a
 * run that failed only on an unhandled error would otherwise show "1 error" without saying which.
 */
import type { Reporter, SerializedError } from 'vitest/node';

const STACK_LINES = 6;

function describeError(error: SerializedError): string {
	const head = `${error.name ?? 'Error'}: ${error.message ?? String(error)}`;
	const stack = (error.stack ?? '')
		.split('\n')
		.filter((line) => line.trim().startsWith('at '))
		.slice(0, STACK_LINES)
		.map((line) => `    ${line.trim()}`);
	return [head, ...stack].join('\n');
}

export default class UnhandledErrorsLast implements Reporter {
	onTestRunEnd(_modules: unknown, unhandledErrors: ReadonlyArray<SerializedError>): void {
		if (unhandledErrors.length === 0) return;
		const lines = unhandledErrors.map((error, i) => `unhandled error ${i + 1} of ${unhandledErrors.length}: ${describeError(error)}`);
		process.stdout.write(`\n${lines.join('\n')}\n`);
	}
}
