import type { IExecuteFunctions, INodeExecutionData, INodeProperties, JsonObject } from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import { validateLongUrl } from '../../helpers/qrCodeRules';
import { API_RETIRED_ERRCODE } from '../../../shared/weChatErrors';
import { weChatApiRequest } from '../../transport';
import { optionsCollection } from '../common';

const showFor = { resource: ['shortLink'], operation: ['shortenUrl'] };

export const description: INodeProperties[] = [
	{
		displayName: 'Long URL',
		name: 'longUrl',
		type: 'string',
		default: '',
		required: true,
		placeholder: 'https://example.com/campaign?channel=poster',
		description: 'The URL to shorten (http://, https:// or weixin://wxpay)',
		displayOptions: { show: showFor },
	},
	{
		displayName: 'WeChat stopped creating short links on 2021-03-15: it now hands back the long URL unchanged. To carry long campaign data behind a QR code, use Create Short Key instead.',
		name: 'retiredNotice',
		type: 'notice',
		default: '',
		displayOptions: { show: showFor },
	},
	optionsCollection(showFor, [
		{
			displayName: 'Return Original If Not Shortened',
			name: 'returnOriginalIfNotShortened',
			type: 'boolean',
			default: false,
			description: 'Whether to output the long URL with shortened = false instead of failing when WeChat does not shorten it',
		},
	]),
];

const RETIRED_HINT =
	'WeChat retired long2short on 2021-03-15 and no longer creates short links. To carry more than 64 characters of campaign data behind a QR code, store it with Create Short Key and put the 15-character key in the Scene String; resolve it with Resolve Short Key when the code is scanned. Or turn on the option "Return Original If Not Shortened".';

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const longUrl = validateLongUrl(this.getNodeParameter('longUrl', itemIndex));
	const { returnOriginalIfNotShortened = false } = this.getNodeParameter('options', itemIndex, {}) as {
		returnOriginalIfNotShortened?: boolean;
	};

	// WeChat answers either the long URL unchanged (the documented behaviour) or 45103 (seen since 2023).
	const shortUrl = await weChatApiRequest
		.call(this, { endpoint: '/cgi-bin/shorturl', body: { action: 'long2short', long_url: longUrl }, idempotent: true, answerFields: [] }, itemIndex)
		.then(
			(response) => (typeof response.short_url === 'string' ? response.short_url : longUrl),
			(error: NodeApiError) => {
				if ((error.errorResponse as JsonObject | undefined)?.errcode === API_RETIRED_ERRCODE) return longUrl;
				throw error;
			},
		);

	const shortened = shortUrl !== longUrl;
	if (!shortened && !returnOriginalIfNotShortened) {
		throw new NodeApiError(this.getNode(), { longUrl } as JsonObject, {
			message: 'WeChat no longer shortens URLs',
			description: RETIRED_HINT,
			itemIndex,
		});
	}
	return { json: { longUrl, shortUrl, shortened } };
}
