import type { IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { validateShortKey } from '../../helpers/qrCodeRules';
import { weChatApiRequest } from '../../transport';
import { optionsCollection } from '../common';

const showFor = { resource: ['shortLink'], operation: ['resolveShortKey'] };

export const description: INodeProperties[] = [
	{
		displayName: 'Short Key',
		name: 'shortKey',
		type: 'string',
		default: '',
		required: true,
		placeholder: '={{ $json.scene }}',
		description: 'The key returned by Create Short Key, e.g. the scene of a scanned code',
		displayOptions: { show: showFor },
	},
	optionsCollection(showFor),
];

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const shortKey = validateShortKey(this.getNodeParameter('shortKey', itemIndex));
	const response = await weChatApiRequest.call(this, { endpoint: '/cgi-bin/shorten/fetch', body: { short_key: shortKey }, idempotent: true, answerFields: ['long_data'] }, itemIndex);
	const createTime = Number(response.create_time);
	const remaining = Number(response.expire_seconds);
	return {
		json: {
			shortKey,
			longData: response.long_data as string,
			createTime,
			createdAt: Number.isFinite(createTime) ? new Date(createTime * 1000).toISOString() : null,
			expireSeconds: remaining,
			expiresAt: Number.isFinite(remaining) ? new Date(Date.now() + remaining * 1000).toISOString() : null,
		},
	};
}
