import { pipeline, Transform, type Readable } from 'node:stream';

import type {
	IBinaryData,
	ICredentialDataDecryptedObject,
	IDataObject,
	IExecuteFunctions,
	IHttpRequestOptions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, sleep } from 'n8n-workflow';

import { isTokenOfAppId, normalizeBaseUrl, type WeChatTokenError } from '../../shared/accessToken';
import { backoffDelayMs, classifyFailure, isRetryable, retryTiming, type FailureFacts } from '../../shared/retryPolicy';
import {
	DAILY_QUOTA_ERRCODE,
	describeWeChatError,
	isStaleTokenError,
	isWeChatError,
	redactSecrets,
	type WeChatErrorBody,
} from '../../shared/weChatErrors';

export const CREDENTIAL_TYPE = 'weChatOfficialAccountApi';

/**
 * WeChat rotates the stable token in its last 5 minutes, old and new both valid meanwhile: a token with less
 * than this left (or already expired, after a quiet spell) is replaced before it is used, so no call meets
 * 42001. Stored tokens without an expiry (saved by older versions) are replaced only when WeChat refuses them.
 */
const REFRESH_AHEAD_MS = 5 * 60_000;

export interface ApiCall {
	endpoint: string;
	body: IDataObject;
	/** Whether sending it twice is harmless (false for creating permanent QR codes). */
	idempotent: boolean;
	/** The text fields WeChat's successful answer always holds; an answer without one is not trusted. */
	answerFields: readonly string[];
}

/** A failure that is final for this call, with what WeChat or the network said. */
class CallFailure extends Error {
	constructor(
		readonly facts: FailureFacts,
		readonly original?: unknown,
	) {
		super(facts.message ?? 'WeChat call failed');
	}
}

/** A redirect's Location without its query string (`$request_uri` redirects repeat the access token there). */
function redirectTarget(location: unknown): string | undefined {
	if (typeof location !== 'string' || location === '') return undefined;
	return location.split(/[?#]/)[0];
}

function factsFromThrown(error: unknown): FailureFacts {
	type Thrown = {
		code?: string;
		httpCode?: string | null;
		message?: string;
		cause?: unknown;
		name?: string;
		errcode?: number;
		errmsg?: string;
		status?: number;
		response?: { status?: number; headers?: Record<string, unknown> };
	};
	const outer = (error ?? {}) as Thrown;
	const inner = (outer.cause ?? {}) as Thrown;
	// The credential's preAuthentication failed: keep WeChat's errcode and errmsg (40164 names the IP), or,
	// for an answer that was not WeChat's, the token fetch's own explanation.
	const tokenError = [outer, inner].find((e) => e.name === 'WeChatTokenError') as WeChatTokenError | undefined;
	if (tokenError) {
		return tokenError.errcode === undefined
			? { message: tokenError.message, description: tokenError.description }
			: { errcode: tokenError.errcode, message: tokenError.errmsg };
	}
	const httpStatus = Number(outer.httpCode) || inner.response?.status || inner.status || undefined;
	return {
		code: inner.code ?? outer.code,
		httpStatus,
		message: inner.message ?? outer.message,
		redirectTo: redirectTarget(inner.response?.headers?.location),
	};
}

/**
 * One per node execution: the decrypted credential (read once, not once per item) and what all items share:
 * the token (a batch fetches one, and a stale one is refreshed once), the pause after WeChat's minute quota,
 * and the daily quota, after which the remaining items fail at once instead of hammering WeChat.
 */
class WeChatSession {
	/** A request that is fetching a token; other requests wait for it instead of fetching their own. */
	private tokenFetch: Promise<unknown> | null = null;

	private quotaPause: Promise<void> | null = null;

	private dailyQuotaError: WeChatErrorBody | null = null;

	/**
	 * A token fetch that failed for good (40164, 40125, 89503, an answer that was not WeChat's…): the
	 * remaining items fail with it instead of each asking again (89503 would page the administrator again).
	 */
	private tokenFailure: CallFailure | null = null;

	/** Once per execution at most: should WeChat hand back the same short-lived token, items go on with it. */
	private refreshedAhead = false;

	constructor(
		private credentials: ICredentialDataDecryptedObject,
		private readonly credentialRef: { id: string; name: string },
	) {}

	get apiBaseUrl(): string {
		return normalizeBaseUrl(String(this.credentials.apiBaseUrl || 'https://api.weixin.qq.com'));
	}

	get mpBaseUrl(): string {
		return normalizeBaseUrl(String(this.credentials.mpBaseUrl || 'https://mp.weixin.qq.com'));
	}

	get secrets(): string[] {
		const { appSecret, token, encodingAESKey, previousEncodingAESKey, accessToken } = this.credentials;
		return [appSecret, token, encodingAESKey, previousEncodingAESKey, accessToken].map((value) => (typeof value === 'string' ? value : ''));
	}

	/** Sends a call with bounded retries; returns WeChat's answer (which may be an errcode) or throws CallFailure. */
	async call(ctx: IExecuteFunctions, call: ApiCall): Promise<unknown> {
		let transientRetries = 0;
		let quotaRetries = 0;
		for (;;) {
			if (this.dailyQuotaError) return this.dailyQuotaError;
			if (this.tokenFailure) throw this.tokenFailure;
			if (this.quotaPause) await this.quotaPause;

			let answer: unknown;
			let facts: FailureFacts;
			try {
				answer = await this.post(ctx, call);
				if (!isWeChatError(answer)) return answer;
				facts = { errcode: answer.errcode, message: answer.errmsg };
			} catch (error) {
				answer = error instanceof CallFailure ? error : new CallFailure(factsFromThrown(error), error);
				facts = (answer as CallFailure).facts;
			}

			const kind = classifyFailure(facts);
			if (kind === 'daily-quota') {
				this.dailyQuotaError ??= { errcode: DAILY_QUOTA_ERRCODE, errmsg: facts.message };
				return this.dailyQuotaError;
			}
			if (kind === 'minute-quota' && quotaRetries < retryTiming.maxMinuteQuotaRetries) {
				quotaRetries++;
				// One pause for the whole batch: every item waits for the quota window instead of retrying alone.
				this.quotaPause ??= sleep(retryTiming.minuteQuotaPauseMs).then(() => {
					this.quotaPause = null;
				});
				continue;
			}
			// The call itself was not sent when its token fetch failed, and stable_token may be sent again.
			if (isRetryable(kind, call.idempotent || facts.beforeCall === true) && transientRetries < retryTiming.maxAttempts - 1) {
				await sleep(backoffDelayMs(transientRetries));
				transientRetries++;
				continue;
			}
			if (answer instanceof CallFailure) throw answer;
			return answer;
		}
	}

	private async post(ctx: IExecuteFunctions, call: ApiCall): Promise<unknown> {
		if (this.tokenFetch) await this.tokenFetch.catch(() => undefined);
		if (this.tokenFailure) throw this.tokenFailure;
		const data = { ...this.credentials };
		if (this.expiresSoon(data)) {
			this.refreshedAhead = true;
			data.accessToken = '';
		}
		const response = await this.send(ctx, call, data);
		if (!isStaleTokenError(response)) return response;

		// Someone refreshed since this request left: the new token only needs a replay. Their refetch may
		// also have failed in transit, leaving the refused token: then this request asks for its own.
		if (this.tokenFetch) await this.tokenFetch.catch(() => undefined);
		if (this.tokenFailure) throw this.tokenFailure;
		if (this.credentials.accessToken !== data.accessToken) return await this.send(ctx, call, { ...this.credentials });
		// Refetch once and replay once; the credential hook forces a refresh only if WeChat hands back the
		// very token it refused. A second refusal is reported, never retried.
		return await this.send(ctx, call, { ...this.credentials, accessToken: '', rejectedAccessToken: data.accessToken });
	}

	private expiresSoon(data: ICredentialDataDecryptedObject): boolean {
		const expiresAt = Number(data.accessTokenExpiresAt);
		return !this.refreshedAhead && Boolean(data.accessToken) && expiresAt > 0 && expiresAt - Date.now() < REFRESH_AHEAD_MS;
	}

	/**
	 * Sends through n8n's authentication, which runs the credential's preAuthentication when the token is
	 * empty and stores the new token in the credential; `data` then holds the token that was used.
	 */
	private async send(ctx: IExecuteFunctions, call: ApiCall, data: ICredentialDataDecryptedObject): Promise<unknown> {
		const fetchesToken = !data.accessToken;
		const request = ctx.helpers.httpRequestWithAuthentication.call(
			ctx,
			CREDENTIAL_TYPE,
			{
				method: 'POST',
				url: `${this.apiBaseUrl}${call.endpoint}`,
				body: call.body,
				json: true,
				timeout: retryTiming.requestTimeoutMs,
				// WeChat's API never redirects; following one would carry the access token to another address.
				disableFollowRedirect: true,
			},
			{ credentialsDecrypted: { ...this.credentialRef, type: CREDENTIAL_TYPE, data } },
		);
		if (fetchesToken) this.tokenFetch = request;
		try {
			return await request;
		} catch (error) {
			// n8n fills `data` with the token once preAuthentication succeeded: without one, the call never left.
			const beforeCall = fetchesToken && !data.accessToken;
			const failure = new CallFailure({ ...factsFromThrown(error), beforeCall }, error);
			// Set before the requests waiting for this fetch resume, so none of them asks again.
			if (beforeCall && classifyFailure(failure.facts) === 'permanent') this.tokenFailure ??= failure;
			throw failure;
		} finally {
			if (fetchesToken) {
				if (data.accessToken) {
					delete data.rejectedAccessToken;
					this.credentials = data;
				}
				if (this.tokenFetch === request) this.tokenFetch = null;
			}
		}
	}
}

const sessions = new WeakMap<IExecuteFunctions, Promise<WeChatSession>>();

function sessionFor(ctx: IExecuteFunctions): Promise<WeChatSession> {
	let session = sessions.get(ctx);
	if (!session) {
		session = (async () => {
			const credentials = { ...(await ctx.getCredentials(CREDENTIAL_TYPE)) };
			// A token stored before the AppID was edited (say, through n8n's API, with no credential test) is the
			// old account's: the first call fetches one for this AppID instead.
			if (!isTokenOfAppId(credentials.accessTokenAppId, credentials.appId)) credentials.accessToken = '';
			const ref = ctx.getNode().credentials?.[CREDENTIAL_TYPE];
			return new WeChatSession(credentials, { id: ref?.id ?? '', name: ref?.name ?? '' });
		})();
		sessions.set(ctx, session);
	}
	return session;
}

export async function getBaseUrls(ctx: IExecuteFunctions): Promise<{ apiBaseUrl: string; mpBaseUrl: string }> {
	const { apiBaseUrl, mpBaseUrl } = await sessionFor(ctx);
	return { apiBaseUrl, mpBaseUrl };
}

function weChatApiError(ctx: IExecuteFunctions, body: WeChatErrorBody, itemIndex: number, secrets: string[]): NodeApiError {
	const errmsg = body.errmsg === undefined ? undefined : redactSecrets(body.errmsg, secrets);
	const { message, description } = describeWeChatError(body.errcode, errmsg);
	return new NodeApiError(ctx.getNode(), { errcode: body.errcode, errmsg: errmsg ?? '' } as JsonObject, {
		message,
		description,
		itemIndex,
	});
}

const CONNECTION_FAILURES: Record<string, string> = {
	ECONNREFUSED: 'connection refused',
	ENOTFOUND: 'host not found',
	EAI_AGAIN: 'host not found',
	ECONNRESET: 'connection reset',
	EPIPE: 'connection reset',
	ETIMEDOUT: 'timed out',
	ECONNABORTED: 'timed out',
	ESOCKETTIMEDOUT: 'timed out',
};

/**
 * A transport failure without any secret or token in it (HTTP client errors carry the request URL). The
 * message names the failure in words: n8n replaces messages that contain raw codes like ECONNRESET.
 */
function transportError(ctx: IExecuteFunctions, facts: FailureFacts, itemIndex: number, secrets: string[], idempotent: boolean): NodeApiError {
	const detail = redactSecrets(facts.message ?? 'unknown error', secrets);
	if (facts.httpStatus !== undefined && facts.httpStatus >= 300 && facts.httpStatus < 400) {
		const target = facts.redirectTo ? ` to ${redactSecrets(facts.redirectTo, secrets)}` : '';
		return new NodeApiError(ctx.getNode(), { detail } as JsonObject, {
			message: `WeChat's API base URL answered with a redirect (HTTP ${facts.httpStatus})`,
			description: `The credential's API Base URL redirects${target}. WeChat's API never redirects, so the node does not follow it: the AppSecret and the access token go only to the address you entered. Enter the address that answers itself: https://api.weixin.qq.com, or your relay's URL if it forwards the calls to WeChat.`,
			httpCode: String(facts.httpStatus),
			itemIndex,
		});
	}
	const what =
		facts.httpStatus !== undefined
			? `HTTP ${facts.httpStatus}`
			: (facts.code && CONNECTION_FAILURES[facts.code]) ?? (/timeout|aborted/i.test(detail) ? 'timed out' : 'connection failed');
	const uncertain = classifyFailure(facts) === 'maybe-processed' && !idempotent;
	return new NodeApiError(ctx.getNode(), { detail } as JsonObject, {
		message: `Could not reach WeChat (${what})`,
		description: uncertain
			? `The connection failed after the request was sent, so WeChat may or may not have created this permanent code. It was not retried, to avoid a duplicate; check before running this item again. (${detail})`
			: `Check the API base URL in the credential and that this n8n can reach it. Temporary faults were retried with backoff. (${detail})`,
		itemIndex,
	});
}

/**
 * Every api.weixin.qq.com call: POST JSON with the shared access token, transient faults retried with
 * backoff where that is safe, a stale token refreshed once and the call replayed once, and WeChat's HTTP-200
 * errors turned into NodeApiErrors with a hint.
 */
export async function weChatApiRequest(this: IExecuteFunctions, call: ApiCall, itemIndex: number): Promise<IDataObject> {
	const session = await sessionFor(this);
	let response: unknown;
	try {
		response = await session.call(this, call);
	} catch (error) {
		const facts = error instanceof CallFailure ? error.facts : factsFromThrown(error);
		if (facts.errcode !== undefined) {
			throw weChatApiError(this, { errcode: facts.errcode, errmsg: facts.message }, itemIndex, session.secrets);
		}
		if (facts.description !== undefined) {
			throw new NodeApiError(this.getNode(), {} as JsonObject, {
				message: redactSecrets(facts.message ?? 'WeChat call failed', session.secrets),
				description: facts.description,
				itemIndex,
			});
		}
		throw transportError(this, facts, itemIndex, session.secrets, call.idempotent || facts.beforeCall === true);
	}
	if (isWeChatError(response)) throw weChatApiError(this, response, itemIndex, session.secrets);
	if (typeof response !== 'object' || response === null) {
		throw new NodeApiError(this.getNode(), {} as JsonObject, {
			message: 'WeChat answered with something other than JSON',
			description: 'Check the API base URL in the credential.',
			itemIndex,
		});
	}
	const missing = call.answerFields.filter((field) => {
		const value = (response as IDataObject)[field];
		return typeof value !== 'string' || value === '';
	});
	if (missing.length > 0) {
		throw new NodeApiError(this.getNode(), {} as JsonObject, {
			message: `WeChat's answer held no ${missing.join(' or ')}`,
			description: `The answer to ${call.endpoint} reported success without ${missing.map((field) => `"${field}"`).join(' and ')}, which WeChat always sends. Check the API base URL in the credential: it must point to WeChat, or to a relay that passes WeChat's answers on unchanged.`,
			itemIndex,
		});
	}
	return response as IDataObject;
}

interface StreamResponse {
	body: Readable;
	headers: Record<string, string | string[] | undefined>;
	statusCode: number;
}

/** WeChat's QR JPEGs are tens of KB; anything this big is not a QR image (a misconfigured or hostile relay). */
export const MAX_QR_IMAGE_BYTES = 2 * 1024 * 1024;

function imageTooLargeError(ctx: IExecuteFunctions, itemIndex: number): NodeApiError {
	return new NodeApiError(ctx.getNode(), {} as JsonObject, {
		message: `The QR image server sent more than ${MAX_QR_IMAGE_BYTES / 1024 / 1024} MB`,
		description: 'A WeChat QR image is a few tens of KB, so this is not one. Check the QR Image Base URL in the credential.',
		itemIndex,
	});
}

/**
 * Passes the image through, failing once it exceeds MAX_QR_IMAGE_BYTES, so it is never stored whole. A
 * pipeline, not pipe(): a connection that breaks off must fail the store, not leave it waiting.
 */
function capped(body: Readable, onTooLarge: () => Error): Readable {
	let bytes = 0;
	const limiter = new Transform({
		transform(chunk: Buffer, _encoding, done) {
			bytes += chunk.length;
			if (bytes > MAX_QR_IMAGE_BYTES) done(onTooLarge());
			else done(null, chunk);
		},
	});
	pipeline(body, limiter, () => undefined);
	return limiter;
}

/**
 * Downloads a QR image from showqrcode (no token needed; 404 for a bad or expired ticket) and streams it into
 * n8n's binary data (to disk in filesystem mode), so a batch never holds every image. Opening and reading it
 * are retried together: downloading changes nothing at WeChat, so every transient failure may be repeated,
 * also one that breaks off in the middle of the image.
 */
export async function downloadQrImage(this: IExecuteFunctions, imageUrl: string, fileName: string, itemIndex: number): Promise<IBinaryData> {
	const options: IHttpRequestOptions = {
		method: 'GET',
		url: imageUrl,
		encoding: 'stream',
		json: false,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		timeout: retryTiming.requestTimeoutMs,
	};
	for (let attempt = 0; ; attempt++) {
		const mayRetry = attempt < retryTiming.maxAttempts - 1;
		let response: StreamResponse;
		try {
			response = (await this.helpers.httpRequest(options)) as StreamResponse;
		} catch (error) {
			const facts = factsFromThrown(error);
			if (classifyFailure(facts) !== 'permanent' && mayRetry) {
				await sleep(backoffDelayMs(attempt));
				continue;
			}
			throw transportError(this, facts, itemIndex, [], true);
		}
		if (response.statusCode >= 500) {
			response.body.destroy();
			if (mayRetry) {
				await sleep(backoffDelayMs(attempt));
				continue;
			}
			// A server fault says nothing about the ticket, which may well be valid: no advice to create a new one.
			throw new NodeApiError(this.getNode(), { statusCode: response.statusCode } as JsonObject, {
				message: `WeChat's QR image server failed (HTTP ${response.statusCode})`,
				description: `It answered HTTP ${response.statusCode} to all ${retryTiming.maxAttempts} attempts, retried with backoff. The ticket may still be valid: get its image again later. If it keeps failing, check the QR Image Base URL in the credential.`,
				httpCode: String(response.statusCode),
				itemIndex,
			});
		}
		const contentType = String(response.headers['content-type'] ?? '').toLowerCase();
		if (response.statusCode < 200 || response.statusCode >= 300 || !contentType.startsWith('image/')) {
			response.body.destroy();
			throw invalidTicketError(this, response.statusCode, contentType, itemIndex);
		}
		if (Number(response.headers['content-length']) > MAX_QR_IMAGE_BYTES) {
			response.body.destroy();
			throw imageTooLargeError(this, itemIndex);
		}
		// WeChat labels JPEGs with the non-standard image/jpg; store the standard type so n8n can preview them.
		const mimeType = contentType.startsWith('image/jpg') ? 'image/jpeg' : contentType.split(';')[0].trim();
		let binary: IBinaryData;
		let tooLarge = false;
		try {
			const image = capped(response.body, () => {
				tooLarge = true;
				return new Error('image too large');
			});
			binary = await this.helpers.prepareBinaryData(image, fileName, mimeType);
		} catch (error) {
			if (tooLarge) throw imageTooLargeError(this, itemIndex);
			if (mayRetry) {
				await sleep(backoffDelayMs(attempt));
				continue;
			}
			throw new NodeApiError(this.getNode(), {} as JsonObject, {
				message: 'The QR image download broke off',
				description: `WeChat's image server stopped sending the image in all ${retryTiming.maxAttempts} attempts, retried with backoff (${(error as Error).message}). The ticket may still be valid: get its image again later. If it keeps failing, check the QR Image Base URL in the credential.`,
				itemIndex,
			});
		}
		if (!binary.bytes) throw invalidTicketError(this, 200, mimeType, itemIndex);
		return binary;
	}
}

export function invalidTicketError(ctx: IExecuteFunctions, statusCode: number, contentType: string, itemIndex: number): NodeApiError {
	return new NodeApiError(ctx.getNode(), { statusCode, contentType } as JsonObject, {
		message: 'Invalid or expired QR ticket',
		description: `WeChat answered HTTP ${statusCode}${contentType ? ` (${contentType})` : ''} instead of an image. Temporary tickets expire after their expireSeconds; create a new ticket.`,
		httpCode: String(statusCode),
		itemIndex,
	});
}
