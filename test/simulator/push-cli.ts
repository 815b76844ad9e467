/**
 * Sends one WeChat event push (or the GET URL verification) to a running endpoint, e.g. an n8n
 * WeChat Scan Trigger, and prints the HTTP status and reply (decrypted when encrypted).
 *
 *   tsx test/simulator/push-cli.ts --url http://127.0.0.1:5678/webhook/... --token T \
 *     [--app-id wx.. --aes-key K --mode safe] [--event subscribe|SCAN] [--scene store_42] [--open-id ..]
 *   tsx test/simulator/push-cli.ts --url ... --token T --verify [--echostr 123]
 */
/* eslint-disable no-console -- a command-line tool reports on stdout and stderr */
import { parseArgs } from 'node:util';
import { openEncryptedReply, sendScanPush, sendUrlVerification } from './push';
import type { PushMode } from './push';

const USAGE = `Usage: tsx test/simulator/push-cli.ts --url URL --token TOKEN [options]
  --verify                  send the GET URL verification instead of an event push
  --echostr S               echostr for --verify (default: random digits)
  --app-id ID               AppID (required with --aes-key)
  --aes-key KEY             43-character EncodingAESKey; the default mode becomes safe
  --mode MODE               plaintext | compatible | safe
  --event EVENT             subscribe (default) | SCAN | unsubscribe | any other Event
  --scene SCENE             scene_id or scene_str of the scanned QR code
  --ticket TICKET           QR ticket (default: a random WeChat-shaped ticket when --scene is set)
  --open-id OPENID          FromUserName (default: random)
  --account-id GH_ID        ToUserName (default: gh_ + 12 hex digits)
  --timeout-ms N            request timeout (default 10000)`;

const MODES: readonly PushMode[] = ['plaintext', 'compatible', 'safe'];

async function main(): Promise<number> {
	const { values } = parseArgs({
		options: {
			url: { type: 'string' },
			token: { type: 'string' },
			verify: { type: 'boolean' },
			echostr: { type: 'string' },
			'app-id': { type: 'string' },
			'aes-key': { type: 'string' },
			mode: { type: 'string' },
			event: { type: 'string' },
			scene: { type: 'string' },
			ticket: { type: 'string' },
			'open-id': { type: 'string' },
			'account-id': { type: 'string' },
			'timeout-ms': { type: 'string' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	if (values.url === undefined || values.token === undefined) {
		console.error(USAGE);
		return 2;
	}
	const timeoutMs = values['timeout-ms'] === undefined ? undefined : Number(values['timeout-ms']);
	if (timeoutMs !== undefined && !(timeoutMs > 0)) throw new Error('--timeout-ms must be a positive number');

	if (values.verify) {
		const result = await sendUrlVerification(values.url, { token: values.token, echostr: values.echostr, timeoutMs });
		console.log(`HTTP ${result.status}`);
		console.log(result.body);
		const echoed = result.status === 200 && result.body === result.echostr;
		console.log(echoed ? 'echostr echoed: URL verification passed' : `expected the body ${result.echostr}`);
		return echoed ? 0 : 1;
	}

	const aesKey = values['aes-key'];
	const mode = (values.mode ?? (aesKey === undefined ? 'plaintext' : 'safe')) as PushMode;
	if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}`);
	const result = await sendScanPush(values.url, {
		token: values.token,
		appId: values['app-id'],
		encodingAESKey: aesKey,
		mode,
		event: values.event ?? 'subscribe',
		scene: values.scene,
		ticket: values.ticket,
		openId: values['open-id'],
		accountId: values['account-id'],
		timeoutMs,
	});
	console.log(`HTTP ${result.status}`);
	console.log(result.body === '' ? '(empty body)' : result.body);
	if (result.body.includes('<Encrypt>') && aesKey !== undefined && values['app-id'] !== undefined) {
		const reply = openEncryptedReply(result.body, { token: values.token, appId: values['app-id'], encodingAESKey: aesKey });
		console.log(`decrypted reply (MsgSignature ${reply.signatureValid ? 'valid' : 'INVALID'}):`);
		console.log(reply.xml);
	}
	return result.status >= 200 && result.status < 300 ? 0 : 1;
}

main().then(
	(code) => {
		process.exitCode = code;
	},
	(error: unknown) => {
		// fetch reports "fetch failed" and keeps the useful part (ECONNREFUSED, timeout...) in `cause`.
		const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
		console.error(`${error instanceof Error ? error.message : String(error)}${cause}`);
		process.exitCode = 2;
	},
);
