import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import type { WeChatCipher } from './helpers/crypto';
import { classifyEvent, dedupeKey, matchesSceneFilter, parseSceneFilters, toScanEventOutput, type ScanEventKind } from './helpers/events';
import { chooseReplyText, type SceneReply } from './helpers/reply';
import { buildPassiveReply, openWeChatPush, verifyUrlRequest } from './helpers/request';
import { settledDelivery } from './helpers/deliveries';
import { checkSignedQuery, replayRetentionMs, signedQueryKey, signedQueryUseCode } from './helpers/replays';
import { cipherFor, recentEventsFor, signedQueriesFor, triggerCredential, unansweredDeliveriesFor } from './helpers/triggerState';
import { DEFAULT_MAX_XML_BYTES } from './helpers/xml';

const WEBHOOK_PATH = 'wechat';

/** The options; an expression may give any type, or nothing. */
interface TriggerOptions {
	requireEncryption?: unknown;
	timestampToleranceSeconds?: unknown;
	replyText?: unknown;
	sceneReplies?: { reply?: Array<{ scene?: unknown; text?: unknown }> };
}

/** A text parameter as text, whatever its expression gave (a number, null for an unset variable…). */
const asText = (value: unknown): string => (value === undefined || value === null ? '' : String(value));

interface WebhookResponse {
	status: number;
	body: string;
	contentType?: string;
}

/** Written directly so WeChat gets exactly this body (n8n's default would be `firstEntryJson`). */
function send(ctx: IWebhookFunctions, { status, body, contentType = 'text/plain; charset=utf-8' }: WebhookResponse): void {
	const res = ctx.getResponseObject();
	res.statusCode = status;
	res.setHeader('Content-Type', contentType);
	res.end(body);
}

function nowSeconds(): number {
	return Math.floor(Date.now() / 1000);
}

export class WeChatScanTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'WeChat Scan Trigger',
		name: 'weChatScanTrigger',
		icon: { light: 'file:wechat.svg', dark: 'file:wechat.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description: 'Starts the workflow when someone scans a WeChat parametric QR code (verified, decrypted, with the scene)',
		defaults: { name: 'WeChat Scan Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'weChatOfficialAccountApi', required: true }],
		webhooks: [
			{ name: 'setup', httpMethod: 'GET', responseMode: 'onReceived', path: WEBHOOK_PATH },
			// Empty responseData: n8n then sends the node's webhookResponse (else its literal "firstEntryJson").
			{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', responseData: '', path: WEBHOOK_PATH },
		],
		properties: [
			{
				displayName:
					'Paste the <b>Production URL</b> above into the WeChat console (Settings and Development > Basic Configuration > Server Configuration > URL), with the Token and EncodingAESKey of the credential, and activate this workflow first: WeChat verifies the URL when you save.',
				name: 'setupNotice',
				type: 'notice',
				default: '',
			},
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				required: true,
				options: [
					{
						name: 'Follow via QR Code (New Follower)',
						value: 'subscribeScene',
						description: 'A non-follower scanned a parametric code and followed: subscribe with qrscene_ + scene',
					},
					{
						name: 'Scan by Follower',
						value: 'scan',
						description: 'An existing follower scanned a parametric code: SCAN with the scene',
					},
					{
						name: 'Plain Follow',
						value: 'subscribe',
						description: 'A follow without a QR scene (search, profile card, ...)',
					},
					{ name: 'Unfollow', value: 'unsubscribe', description: 'A follower unfollowed the account' },
				],
				default: ['subscribeScene', 'scan'],
				description: 'Which pushes start the workflow; the others are answered "success" and start nothing',
			},
			{
				displayName: 'Scene Filter',
				name: 'sceneFilter',
				type: 'string',
				default: '',
				placeholder: 'e.g. store_*, poster_spring, 1001',
				description: 'Only scenes listed here start the workflow: exact values, or a prefix ending in *, separated by commas. Empty: every scene, and events without a scene.',
			},
			{
				displayName: 'Options',
				name: 'options',
				type: 'collection',
				placeholder: 'Add Option',
				default: {},
				options: [
					{
						displayName: 'Reply Text',
						name: 'replyText',
						type: 'string',
						typeOptions: { rows: 2 },
						default: '',
						placeholder: 'Welcome! You scanned {scene}.',
						description: 'A text message WeChat shows the user right away (encrypted in safe mode). {scene}, {sceneId}, {openId}, {event} and {accountId} are replaced by the event\'s values; expressions are allowed. Empty: answer "success" and show nothing.',
					},
					{
						displayName: 'Reply per Scene',
						name: 'sceneReplies',
						type: 'fixedCollection',
						typeOptions: { multipleValues: true },
						default: {},
						description: 'A different reply text for some scenes; the first matching row wins, otherwise Reply Text is used',
						options: [
							{
								displayName: 'Reply',
								name: 'reply',
								values: [
									{
										displayName: 'Scene',
										name: 'scene',
										type: 'string',
										default: '',
										placeholder: 'store_*',
										description: 'Exact scene values, or prefixes ending in *, separated by commas',
									},
									{
										displayName: 'Text',
										name: 'text',
										type: 'string',
										default: '',
										description: 'The reply; the same placeholders as Reply Text work here',
									},
								],
							},
						],
					},
					{
						displayName: 'Require Encryption',
						name: 'requireEncryption',
						type: 'boolean',
						default: false,
						description: 'Whether to refuse plaintext pushes when the credential has an EncodingAESKey, so nobody can downgrade safe mode. Turn on once the account uses safe mode.',
					},
					{
						displayName: 'Timestamp Tolerance (Seconds)',
						name: 'timestampToleranceSeconds',
						type: 'number',
						typeOptions: { minValue: 0 },
						default: 300,
						description: 'Refuse pushes whose signed timestamp is further than this from the server clock. Inside the window a copy of an accepted push starts nothing. 0 disables the check; copies are then recognised for 60 s only.',
					},
				],
			},
		],
	};

	// WeChat has no API to register the push URL: an administrator pastes it into the console by hand,
	// so there is nothing to check, create or delete when the workflow is activated.
	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				return true;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				return true;
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const rejection = (status: number, reason: string): IWebhookResponseData => {
			send(this, { status, body: reason });
			return { noWebhookResponse: true };
		};

		// getNode() deep-copies the node, so once per push.
		const node = this.getNode();
		const triggerId = `${this.getWorkflow().id ?? ''}:${node.id}`;
		let token: string;
		let appId: string;
		let cipher: WeChatCipher | undefined;
		try {
			const credentialKey = `${triggerId}:${node.credentials?.weChatOfficialAccountApi?.id}`;
			const credential = await triggerCredential(credentialKey, async () => {
				const stored = await this.getCredentials('weChatOfficialAccountApi');
				return {
					token: String(stored.token ?? '').trim(),
					appId: String(stored.appId ?? '').trim(),
					encodingAESKey: String(stored.encodingAESKey ?? '').trim(),
					previousEncodingAESKey: String(stored.previousEncodingAESKey ?? '').trim(),
				};
			});
			token = credential.token;
			appId = credential.appId;
			cipher = credential.encodingAESKey
				? cipherFor(credential.encodingAESKey, appId, credential.previousEncodingAESKey)
				: undefined;
		} catch (error) {
			this.logger.error(`WeChat Scan Trigger: the credential cannot be used: ${(error as Error).message}`);
			return rejection(500, 'The WeChat credential of this trigger is incomplete or invalid');
		}
		if (!token) {
			this.logger.error('WeChat Scan Trigger: the credential has no Token, so no push can be verified');
			return rejection(500, 'The WeChat credential of this trigger has no Token');
		}

		// A reply expression that fails must not stop WeChat's URL check nor an event: then only the options
		// the checks need are read, and the event gets no reply.
		let options: TriggerOptions;
		let replyFailure: Error | undefined;
		try {
			options = this.getNodeParameter('options', {}) as TriggerOptions;
		} catch (error) {
			replyFailure = error as Error;
			options = {
				timestampToleranceSeconds: this.getNodeParameter('options.timestampToleranceSeconds', 300),
				requireEncryption: this.getNodeParameter('options.requireEncryption', false),
			};
		}
		const toleranceSetting = Number(options.timestampToleranceSeconds ?? 300);
		const tolerance = Number.isFinite(toleranceSetting) ? toleranceSetting : 300;
		const req = this.getRequestObject();

		if (this.getWebhookName() === 'setup') {
			const verification = verifyUrlRequest(req.query, token, tolerance, nowSeconds);
			if (!verification.ok) return rejection(verification.status, verification.reason);
			send(this, { status: 200, body: verification.echostr });
			return { noWebhookResponse: true };
		}

		const rawBody = (req as { rawBody?: Buffer }).rawBody ?? (typeof req.body === 'string' ? req.body : undefined);
		const opened = openWeChatPush(
			{ query: req.query, rawBody },
			{
				token,
				appId,
				cipher,
				requireEncryption: options.requireEncryption === true,
				timestampToleranceSeconds: tolerance,
				maxBodyBytes: DEFAULT_MAX_XML_BYTES,
				nowSeconds,
			},
		);
		if (!opened.ok) return rejection(opened.status, opened.reason);

		// A copy of an accepted push passes the signature and timestamp checks while its timestamp is inside
		// the window, so its signed query is remembered that long: a copy is answered, never run again.
		const key = dedupeKey(opened.message);
		const queryUse = { triggerId, eventKey: key };
		const signedQueries = signedQueriesFor(token, replayRetentionMs(tolerance));
		const signedQuery = checkSignedQuery(signedQueries, opened, queryUse);
		if (!signedQuery.ok) return rejection(401, signedQuery.reason);

		const kind = classifyEvent(opened.message);
		const events = this.getNodeParameter('events', []) as ScanEventKind[];
		const filters = parseSceneFilters(asText(this.getNodeParameter('sceneFilter', '')));
		const event = toScanEventOutput(opened.message);
		if (kind === null || !events.includes(kind) || !matchesSceneFilter(event.scene, filters)) {
			send(this, { status: 200, body: 'success' });
			return { noWebhookResponse: true };
		}

		// No message to a follower who just left; and a reply that cannot be built costs the reply, not the event.
		let replyText = '';
		if (replyFailure) {
			this.logger.warn(`WeChat Scan Trigger: the reply could not be built, so WeChat gets "success" and the workflow still starts: ${replyFailure.message}`);
		} else if (kind !== 'unsubscribe') {
			const sceneReplies: SceneReply[] = (options.sceneReplies?.reply ?? []).map((row) => ({ scene: asText(row.scene), text: asText(row.text) }));
			replyText = chooseReplyText(event, asText(options.replyText), sceneReplies);
		}
		const reply = buildPassiveReply(opened, replyText, { nowSeconds });
		const contentType = reply === 'success' ? 'text/plain; charset=utf-8' : 'application/xml; charset=utf-8';

		// A WeChat re-send of a push already handed to n8n starts no second execution: it gets the answer n8n
		// gave the first delivery, or takes its place when n8n could not store it. WeChat may sign a re-send
		// anew, so events are recognised by their key; a later copy of the same request, by its query.
		const recentEvents = recentEventsFor(triggerId);
		const unanswered = unansweredDeliveriesFor(triggerId);
		const seenEvent = recentEvents.seen(key);
		if (seenEvent || signedQuery.repeated) {
			const first = unanswered.get(key);
			let state = first ? await settledDelivery(first) : 'stored';
			// Another re-send that waited for the same delivery took its place already.
			if (state === 'refused' && unanswered.get(key) !== first) state = 'storing';
			if (state === 'storing') return rejection(503, 'n8n is still storing the first delivery of this event');
			if (state === 'stored') {
				if (first) unanswered.answered(key, first);
				send(this, { status: 200, body: reply, contentType });
				return { noWebhookResponse: true };
			}
			// The first delivery's refusal made both memories forget this push: it is this delivery's now.
			recentEvents.forget(key);
			recentEvents.seen(key);
			signedQueries.recordFirst(signedQueryKey(opened), signedQueryUseCode(queryUse));
		}
		// n8n sends this answer once it has stored the execution (in queue mode: and queued it), so WeChat
		// sees "success" only for an event n8n holds. When n8n cannot take the event it answers an error
		// instead: the event is forgotten then, so that WeChat's re-send of it starts the execution.
		const res = this.getResponseObject();
		unanswered.add(key, res);
		res.once('finish', () => {
			if (unanswered.answered(key, res) && res.statusCode !== 200) {
				recentEvents.forget(key);
				signedQueries.forget(signedQueryKey(opened));
			}
		});
		res.setHeader('Content-Type', contentType);
		return { workflowData: [[{ json: event as unknown as IDataObject }]], webhookResponse: reply };
	}
}
