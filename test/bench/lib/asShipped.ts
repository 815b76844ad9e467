/**
 * Imported first by every benchmark entry point: from here on, this project's TypeScript (nodes,
 * credentials, test harness, simulator, benchmarks) is compiled the way `n8n-node build` ships it, by
 * TypeScript itself with the options of tsconfig.json, instead of by tsx.
 *
 * Why: tsx compiles with esbuild's `keepNames`, which wraps every function created at run time in an
 * Object.defineProperty(fn, 'name') call. On a per-request path of a few dozen microseconds that alone
 * added 20–40 µs per event (measured), a cost the published package (plain tsc output) never pays.
 *
 * It also fixes module resolution for this CommonJS package: Node's CommonJS rules try `.json` before
 * `.ts`, so `import … from './WeChatQrCode.node'` would load the node's codex file WeChatQrCode.node.json
 * (vitest tries TypeScript first, so the tests never notice).
 */
import { existsSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import ts from 'typescript';

const root = path.resolve(__dirname, '../../..');

function compilerOptions(): ts.CompilerOptions {
	const configFile = path.join(root, 'tsconfig.json');
	const { config, error } = ts.readConfigFile(configFile, ts.sys.readFile);
	if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
	const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configFile);
	// Same code generation as the build; only the outputs that make no sense in memory change.
	return { ...options, sourceMap: false, inlineSourceMap: true, inlineSources: true, declaration: false, incremental: false, outDir: undefined };
}

const options = compilerOptions();

type CompilingModule = NodeJS.Module & { _compile(code: string, filename: string): void };
type Loader = (module: CompilingModule, filename: string) => void;
type Resolver = (request: string, ...rest: unknown[]) => string;
const internals = Module as unknown as { _extensions: Record<string, Loader>; _resolveFilename: Resolver };

const inProject = (filename: string) => filename.startsWith(`${root}${path.sep}`) && !filename.includes(`${path.sep}node_modules${path.sep}`);

const tsLoader = internals._extensions['.ts'];
internals._extensions['.ts'] = (module, filename) => {
	if (!inProject(filename)) {
		tsLoader(module, filename);
		return;
	}
	const { outputText } = ts.transpileModule(readFileSync(filename, 'utf8'), { fileName: filename, compilerOptions: options });
	// The test harness uses import.meta.url, which CommonJS output cannot hold; this file's URL is what it means.
	module._compile(outputText.replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(filename).href)), filename);
};

const resolve = internals._resolveFilename;
internals._resolveFilename = (request, ...rest) => {
	const resolved = resolve(request, ...rest);
	if (resolved.endsWith('.node.json') && !request.endsWith('.json') && inProject(resolved)) {
		const source = `${resolved.slice(0, -'.json'.length)}.ts`;
		if (existsSync(source)) return source;
	}
	return resolved;
};
