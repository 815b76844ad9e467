/**
 * tsx test/simulator/cli.ts [--port 4100] [--latency 0] [--app-id ..] [--app-secret ..]
 *   [--short-url-mode echo|retired] [--token-ttl 7200]
 * Prints one JSON line {"url","appId","appSecret"} on stdout, then serves until SIGINT/SIGTERM.
 */
import { startSimulator } from './index';
import type { SimulatorOptions } from './types';

const DEFAULT_CLI_PORT = 4100;

function parseArgs(argv: string[]): SimulatorOptions {
	const options: SimulatorOptions = { port: DEFAULT_CLI_PORT };
	for (let i = 0; i < argv.length; i++) {
		const flag = argv[i];
		const value = argv[i + 1];
		if (value === undefined) throw new Error(`missing value after ${flag}`);
		i++;
		const asNumber = (): number => {
			const n = Number(value);
			if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} needs a non-negative number, got ${value}`);
			return n;
		};
		switch (flag) {
			case '--port':
				options.port = asNumber();
				break;
			case '--latency':
				options.latencyMs = asNumber();
				break;
			case '--token-ttl':
				options.tokenTtlSeconds = asNumber();
				break;
			case '--app-id':
				options.appId = value;
				break;
			case '--app-secret':
				options.appSecret = value;
				break;
			case '--short-url-mode':
				if (value !== 'echo' && value !== 'retired') throw new Error('--short-url-mode must be echo or retired');
				options.shortUrlMode = value;
				break;
			default:
				throw new Error(`unknown option ${flag}`);
		}
	}
	return options;
}

async function main(): Promise<void> {
	const simulator = await startSimulator(parseArgs(process.argv.slice(2)));
	process.stdout.write(`${JSON.stringify({ url: simulator.url, appId: simulator.appId, appSecret: simulator.appSecret })}\n`);
	let stopping = false;
	const stop = (): void => {
		if (stopping) return;
		stopping = true;
		simulator.close().then(
			() => process.exit(0),
			() => process.exit(1),
		);
	};
	process.once('SIGINT', stop);
	process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
	process.stderr.write(`simulator: ${error instanceof Error ? error.message : String(error)}\n`);
	process.exit(2);
});
