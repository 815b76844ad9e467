import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import * as qrCode from './actions/qrCode';
import { router } from './actions/router';
import * as shortLink from './actions/shortLink';

export class WeChatQrCode implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'WeChat QR Code',
		name: 'weChatQrCode',
		icon: { light: 'file:wechat.svg', dark: 'file:wechat.dark.svg' },
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Create WeChat Official Account parametric QR codes, fetch their images and store campaign data behind short keys',
		defaults: { name: 'WeChat QR Code' },
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'weChatOfficialAccountApi', required: true }],
		properties: [
			{
				displayName: 'Resource',
				name: 'resource',
				type: 'options',
				noDataExpression: true,
				options: [
					{ name: 'QR Code', value: 'qrCode' },
					{ name: 'Short Link', value: 'shortLink' },
				],
				default: 'qrCode',
			},
			...qrCode.description,
			...shortLink.description,
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		return await router.call(this);
	}
}
