import type { IDataObject, IExecuteFunctions, INodeExecutionData, INodeProperties, NodeApiError } from 'n8n-workflow';

import { buildCreateTicketRequest, qrImageUrl, type QrType, type SceneType } from '../../helpers/qrCodeRules';
import { downloadQrImage, getBaseUrls, weChatApiRequest } from '../../transport';
import { failedAfterCreate, optionsCollection } from '../common';
import { imageFileName, withImage } from './getImage.operation';

const showFor = { resource: ['qrCode'], operation: ['createTicket'] };

export const description: INodeProperties[] = [
	{
		displayName: 'QR Type',
		name: 'qrType',
		type: 'options',
		options: [
			{
				name: 'Temporary',
				value: 'temporary',
				description: 'Expires after up to 30 days; WeChat allows many of them',
			},
			{
				name: 'Permanent',
				value: 'permanent',
				description: 'Never expires; an account holds at most 100,000',
			},
		],
		default: 'temporary',
		displayOptions: { show: showFor },
	},
	{
		displayName: 'Scene Type',
		name: 'sceneType',
		type: 'options',
		options: [
			{ name: 'Number (Scene ID)', value: 'id', description: 'A whole number carried by the code' },
			{ name: 'Text (Scene String)', value: 'string', description: 'Up to 64 characters carried by the code' },
		],
		default: 'string',
		displayOptions: { show: showFor },
	},
	{
		displayName: 'Scene ID',
		name: 'sceneId',
		type: 'number',
		typeOptions: { minValue: 1, numberPrecision: 0 },
		default: 1,
		required: true,
		description: 'Whole number that WeChat sends back when the code is scanned: 1 to 4294967295 for temporary codes, 1 to 100000 for permanent ones',
		displayOptions: { show: { ...showFor, sceneType: ['id'] } },
	},
	{
		displayName: 'Scene String',
		name: 'sceneStr',
		type: 'string',
		default: '',
		required: true,
		placeholder: 'e.g. store_042',
		description: 'Text (1 to 64 characters) that WeChat sends back when the code is scanned, e.g. a channel, store or user to bind',
		displayOptions: { show: { ...showFor, sceneType: ['string'] } },
	},
	{
		displayName: 'Expire Seconds',
		name: 'expireSeconds',
		type: 'number',
		typeOptions: { minValue: 60, maxValue: 2592000, numberPrecision: 0 },
		default: 604800,
		description: 'Lifetime of the temporary code, 60 to 2592000 seconds (30 days). Always sent: WeChat would otherwise use 60 seconds.',
		displayOptions: { show: { ...showFor, qrType: ['temporary'] } },
	},
	optionsCollection(showFor, [
		{
			displayName: 'Download Image',
			name: 'downloadImage',
			type: 'boolean',
			default: false,
			description: 'Whether to also download the QR image (JPEG) into binary data in the same step',
		},
		{
			displayName: 'Put Image in Field',
			name: 'binaryPropertyName',
			type: 'string',
			default: 'data',
			description: 'The name of the binary field for the image when Download Image is on',
		},
	]),
];

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const qrType = this.getNodeParameter('qrType', itemIndex) as QrType;
	const sceneType = this.getNodeParameter('sceneType', itemIndex) as SceneType;
	const request = buildCreateTicketRequest({
		qrType,
		sceneType,
		sceneId: sceneType === 'id' ? this.getNodeParameter('sceneId', itemIndex) : undefined,
		sceneStr: sceneType === 'string' ? this.getNodeParameter('sceneStr', itemIndex) : undefined,
		expireSeconds: qrType === 'temporary' ? this.getNodeParameter('expireSeconds', itemIndex) : undefined,
	});
	const options = this.getNodeParameter('options', itemIndex, {}) as {
		downloadImage?: boolean;
		binaryPropertyName?: string;
	};

	const response = await weChatApiRequest.call(
		this,
		// A repeated temporary code is harmless; a repeated permanent one would use up the account's 100,000.
		{ endpoint: '/cgi-bin/qrcode/create', body: request.body as unknown as IDataObject, idempotent: qrType === 'temporary', answerFields: ['ticket', 'url'] },
		itemIndex,
	);
	const ticket = String(response.ticket);
	// WeChat may shorten the lifetime it was asked for (it caps at 30 days); report what it granted.
	const expireSeconds =
		request.expireSeconds === null
			? null
			: typeof response.expire_seconds === 'number'
				? response.expire_seconds
				: request.expireSeconds;
	const { mpBaseUrl } = await getBaseUrls(this);
	const imageUrl = qrImageUrl(mpBaseUrl, ticket);

	const item: INodeExecutionData = {
		json: {
			ticket,
			url: response.url as string,
			imageUrl,
			qrType,
			actionName: request.actionName,
			scene: request.scene,
			expireSeconds,
			expiresAt: expireSeconds === null ? null : new Date(Date.now() + expireSeconds * 1000).toISOString(),
		},
	};
	if (options.downloadImage) {
		try {
			const image = await downloadQrImage.call(this, imageUrl, imageFileName(String(request.scene)), itemIndex);
			item.binary = withImage(this, itemIndex, options.binaryPropertyName || 'data', image);
		} catch (error) {
			throw failedAfterCreate(this.getNode(), error as NodeApiError, item.json, itemIndex);
		}
	}
	return item;
}
