import type {
	ICredentialDataDecryptedObject,
	IDataObject,
	IExecuteFunctions,
	IHttpRequestOptions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import { normalizeBaseUrl } from '../../shared/accessToken';
import {
	describeWeChatError,
	isStaleTokenError,
	isWeChatError,
	redactSecrets,
	type WeChatErrorBody,
} from '../../shared/weChatErrors';

export const CREDENTIAL_TYPE = 'weChatOfficialAccountApi';

/**
 * One per node execution: the decrypted credential (read once, not once per item) and the token state
 * shared by all items, so a batch fetches one token and a stale token is refreshed once, not per item.
 */
class WeChatSession {
	/** A request that is fetching a token; other requests wait for it instead of fetching their own. */
	private tokenFetch: Promise<unknown> | null = null;

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
		const { appSecret, token, encodingAESKey, accessToken } = this.credentials;
		return [appSecret, token, encodingAESKey, accessToken].map((value) => (typeof value === 'string' ? value : ''));
	}

	async post(ctx: IExecuteFunctions, endpoint: string, body: IDataObject): Promise<unknown> {
		if (this.tokenFetch) await this.tokenFetch.catch(() => undefined);
		const data = { ...this.credentials };
		const response = await this.send(ctx, endpoint, body, data);
		if (!isStaleTokenError(response)) return response;

		// Someone refreshed since this request left: the new token only needs a replay.
		if (this.credentials.accessToken !== data.accessToken || this.tokenFetch) {
			if (this.tokenFetch) await this.tokenFetch.catch(() => undefined);
			return await this.send(ctx, endpoint, body, { ...this.credentials });
		}
		// Refetch once and replay once; the credential hook forces a refresh only if WeChat hands back the
		// very token it refused. A second refusal is reported, never retried.
		return await this.send(ctx, endpoint, body, {
			...this.credentials,
			accessToken: '',
			rejectedAccessToken: data.accessToken,
		});
	}

	/**
	 * Sends through n8n's authentication, which runs the credential's preAuthentication when the token is
	 * empty and stores the new token in the credential; `data` then holds the token that was used.
	 */
	private async send(
		ctx: IExecuteFunctions,
		endpoint: string,
		body: IDataObject,
		data: ICredentialDataDecryptedObject,
	): Promise<unknown> {
		const fetchesToken = !data.accessToken;
		const request = ctx.helpers.httpRequestWithAuthentication.call(
			ctx,
			CREDENTIAL_TYPE,
			{ method: 'POST', url: `${this.apiBaseUrl}${endpoint}`, body, json: true },
			{ credentialsDecrypted: { ...this.credentialRef, type: CREDENTIAL_TYPE, data } },
		);
		if (fetchesToken) this.tokenFetch = request;
		try {
			return await request;
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
			const credentials = await ctx.getCredentials(CREDENTIAL_TYPE);
			const ref = ctx.getNode().credentials?.[CREDENTIAL_TYPE];
			return new WeChatSession({ ...credentials }, { id: ref?.id ?? '', name: ref?.name ?? '' });
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

/** A transport failure without any secret or token in it (HTTP client errors carry the request URL). */
function transportError(ctx: IExecuteFunctions, error: unknown, itemIndex: number, secrets: string[]): NodeApiError {
	const cause = error as { name?: string; errcode?: number; description?: string; message?: string; code?: string; cause?: unknown; httpCode?: string | null };
	const tokenError = [cause, cause.cause as typeof cause | undefined].find((e) => e?.name === 'WeChatTokenError');
	if (tokenError && typeof tokenError.errcode === 'number') {
		return new NodeApiError(ctx.getNode(), { errcode: tokenError.errcode } as JsonObject, {
			message: redactSecrets(tokenError.message ?? 'Could not get a WeChat access token', secrets),
			description: redactSecrets(tokenError.description ?? '', secrets),
			itemIndex,
		});
	}
	const message = redactSecrets(cause.message ?? String(error), secrets);
	const httpCode = cause.httpCode ?? null;
	return new NodeApiError(ctx.getNode(), { message, code: cause.code ?? '' } as JsonObject, {
		message: `Could not reach WeChat: ${message}`,
		description: 'Check the API base URL in the credential and that this n8n can reach it.',
		httpCode: httpCode ?? undefined,
		itemIndex,
	});
}

/**
 * Every api.weixin.qq.com call: POST JSON with the shared access token, a stale token refreshed once and
 * the call replayed once, and WeChat's HTTP-200 errors turned into NodeApiErrors with a hint.
 */
export async function weChatApiRequest(
	this: IExecuteFunctions,
	endpoint: string,
	body: IDataObject,
	itemIndex: number,
): Promise<IDataObject> {
	const session = await sessionFor(this);
	let response: unknown;
	try {
		response = await session.post(this, endpoint, body);
	} catch (error) {
		throw transportError(this, error, itemIndex, session.secrets);
	}
	if (isWeChatError(response)) throw weChatApiError(this, response, itemIndex, session.secrets);
	if (typeof response !== 'object' || response === null) {
		throw new NodeApiError(this.getNode(), {} as JsonObject, {
			message: 'WeChat answered with something other than JSON',
			description: 'Check the API base URL in the credential.',
			itemIndex,
		});
	}
	return response as IDataObject;
}

export interface QrImage {
	data: Buffer;
	mimeType: string;
}

/** Downloads a QR image from showqrcode; it needs no token, and answers 404 for a bad or expired ticket. */
export async function downloadQrImage(this: IExecuteFunctions, imageUrl: string, itemIndex: number): Promise<QrImage> {
	const options: IHttpRequestOptions = {
		method: 'GET',
		url: imageUrl,
		encoding: 'arraybuffer',
		json: false,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
	};
	let response: { body: Buffer; headers: Record<string, string | string[] | undefined>; statusCode: number };
	try {
		response = await this.helpers.httpRequest(options);
	} catch (error) {
		throw transportError(this, error, itemIndex, []);
	}
	const contentType = String(response.headers['content-type'] ?? '').toLowerCase();
	const body = Buffer.isBuffer(response.body) ? response.body : Buffer.from(response.body ?? '');
	if (response.statusCode < 200 || response.statusCode >= 300 || !contentType.startsWith('image/') || body.length === 0) {
		throw new NodeApiError(this.getNode(), { statusCode: response.statusCode, contentType } as JsonObject, {
			message: 'Invalid or expired QR ticket',
			description: `WeChat answered HTTP ${response.statusCode}${contentType ? ` (${contentType})` : ''} instead of an image. Temporary tickets expire after their expireSeconds; create a new ticket.`,
			httpCode: String(response.statusCode),
			itemIndex,
		});
	}
	// WeChat labels JPEGs with the non-standard image/jpg; store the standard type so n8n can preview them.
	const mimeType = contentType.startsWith('image/jpg') ? 'image/jpeg' : contentType.split(';')[0].trim();
	return { data: body, mimeType };
}
