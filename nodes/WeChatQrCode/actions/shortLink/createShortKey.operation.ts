import type { IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { integerInRange, LIMITS, validateLongData } from '../../helpers/qrCodeRules';
import { weChatApiRequest } from '../../transport';
import { optionsCollection } from '../common';

const showFor = { resource: ['shortLink'], operation: ['createShortKey'] };

export const description: INodeProperties[] = [
	{
		displayName: 'Long Data',
		name: 'longData',
		type: 'string',
		typeOptions: { rows: 3 },
		default: '',
		required: true,
		placeholder: '{"campaign":"spring","store":42,"coupon":"A7"}',
		description: 'Up to 4 KB of text to store; only a token of this account can read it back',
		displayOptions: { show: showFor },
	},
	{
		displayName: 'Expire Seconds',
		name: 'expireSeconds',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 2592000, numberPrecision: 0 },
		default: 2592000,
		description: 'How long the key stays readable, up to 2592000 seconds (30 days)',
		displayOptions: { show: showFor },
	},
	optionsCollection(showFor),
];

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const longData = validateLongData(this.getNodeParameter('longData', itemIndex));
	const { min, max } = LIMITS.shortKeyExpireSeconds;
	const expireSeconds = integerInRange('expireSeconds', this.getNodeParameter('expireSeconds', itemIndex), min, max);
	const response = await weChatApiRequest.call(this, { endpoint: '/cgi-bin/shorten/gen', body: { long_data: longData, expire_seconds: expireSeconds }, idempotent: true, answerFields: ['short_key'] }, itemIndex);
	return {
		json: {
			shortKey: response.short_key as string,
			longData,
			expireSeconds,
			expiresAt: new Date(Date.now() + expireSeconds * 1000).toISOString(),
		},
	};
}
