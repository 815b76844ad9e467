import type {
	ICredentialDataDecryptedObject,
	ICredentialTestRequest,
	ICredentialType,
	IHttpRequestHelper,
	IHttpRequestOptions,
	INodeProperties,
	Icon,
} from 'n8n-workflow';

import { fetchStableAccessToken, type JsonPost } from '../nodes/shared/accessToken';
import { describeWeChatError } from '../nodes/shared/weChatErrors';

/** errcodes that fail the credential test, each with the hint a person can act on. */
const TEST_FAILURE_ERRCODES = [40001, 40013, 40014, 40125, 40164, 40243, 41001, 42001, 48001, 89503];

export class WeChatOfficialAccountApi implements ICredentialType {
	name = 'weChatOfficialAccountApi';

	displayName = 'WeChat Official Account API';

	icon: Icon = { light: 'file:wechat.svg', dark: 'file:wechat.dark.svg' };

	documentationUrl = 'https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html';

	properties: INodeProperties[] = [
		{
			displayName: 'AppID',
			name: 'appId',
			type: 'string',
			default: '',
			required: true,
			placeholder: 'wx1234567890abcdef',
			description: 'Developer ID (AppID), in the WeChat console under Settings and Development > Basic Configuration',
		},
		{
			displayName: 'AppSecret',
			name: 'appSecret',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description: "Developer password (AppSecret), same page as the AppID. n8n's egress IP must be on the account's API IP whitelist.",
		},
		{
			displayName: 'Token',
			name: 'token',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'The server configuration Token (3–32 letters or digits) from Settings and Development > Basic Configuration > Server Configuration. Used by the WeChat Scan Trigger to verify pushes.',
		},
		{
			displayName: 'EncodingAESKey',
			name: 'encodingAESKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'The 43-character message encryption key from the same Server Configuration. Needed when the message encryption mode is compatible or safe; leave empty in plaintext mode.',
		},
		{
			displayName: 'Previous EncodingAESKey',
			name: 'previousEncodingAESKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'Only while rotating the key: the EncodingAESKey that was replaced. Pushes encrypted with either key are accepted, and each reply uses the key of its push.',
		},
		{
			displayName: 'API Base URL',
			name: 'apiBaseUrl',
			type: 'string',
			default: 'https://api.weixin.qq.com',
			description: 'Change only for a relay proxy with a fixed egress IP, or for a WeChat simulator',
		},
		{
			displayName: 'QR Image Base URL',
			name: 'mpBaseUrl',
			type: 'string',
			default: 'https://mp.weixin.qq.com',
			description: 'Where WeChat serves QR images (showqrcode). Change only for a relay proxy or a simulator.',
		},
		{
			displayName: 'Access Token',
			name: 'accessToken',
			type: 'hidden',
			typeOptions: { expirable: true, password: true },
			default: '',
		},
		{
			displayName: 'Access Token Expires At',
			name: 'accessTokenExpiresAt',
			type: 'hidden',
			typeOptions: { password: true },
			default: 0,
		},
		{
			displayName: 'Access Token AppID',
			name: 'accessTokenAppId',
			type: 'hidden',
			default: '',
		},
	];

	// n8n stores what this returns in the encrypted credential, so every process (queue-mode workers too)
	// shares one token instead of each fetching its own.
	async preAuthentication(this: IHttpRequestHelper, credentials: ICredentialDataDecryptedObject) {
		const appId = String(credentials.appId ?? '');
		const { token, expiresAt } = await fetchStableAccessToken(this.helpers.httpRequest as JsonPost, {
			apiBaseUrl: String(credentials.apiBaseUrl || 'https://api.weixin.qq.com'),
			appId,
			appSecret: String(credentials.appSecret ?? ''),
			rejectedAccessToken:
				typeof credentials.rejectedAccessToken === 'string' ? credentials.rejectedAccessToken : undefined,
		});
		// The expiry (ms since the epoch) lets the node fetch the next token before WeChat refuses this one;
		// the AppID tells the node whether the token still belongs to the account the credential names.
		return { accessToken: token, accessTokenExpiresAt: expiresAt, accessTokenAppId: appId.trim() };
	}

	// A function, not the declarative form: n8n resolves a declarative one through its expression engine on
	// every request, which cost about 0.2 ms of CPU per call in a bulk run (BENCHMARKS.md, benchmark 1).
	async authenticate(credentials: ICredentialDataDecryptedObject, requestOptions: IHttpRequestOptions): Promise<IHttpRequestOptions> {
		return { ...requestOptions, qs: { ...requestOptions.qs, access_token: String(credentials.accessToken ?? '') } };
	}

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.apiBaseUrl.trim().replace(/\\/+$/, "")}}',
			url: '/cgi-bin/getcallbackip',
			method: 'GET',
			// The access token is in the query string: a redirect must not carry it to another address.
			disableFollowRedirect: true,
		},
		rules: TEST_FAILURE_ERRCODES.map((errcode) => {
			const { message, description } = describeWeChatError(errcode);
			return {
				type: 'responseSuccessBody' as const,
				properties: { key: 'errcode', value: errcode, message: `${message}. ${description}` },
			};
		}),
	};
}
