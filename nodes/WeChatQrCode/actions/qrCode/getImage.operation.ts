import type { IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { normalizeTicket, qrImageUrl } from '../../helpers/qrCodeRules';
import { downloadQrImage, getBaseUrls } from '../../transport';

const showFor = { resource: ['qrCode'], operation: ['getImage'] };

export const description: INodeProperties[] = [
	{
		displayName: 'Ticket',
		name: 'ticket',
		type: 'string',
		default: '',
		required: true,
		placeholder: '={{ $json.ticket }}',
		description: 'The ticket returned by Create QR Ticket',
		displayOptions: { show: showFor },
	},
	{
		displayName: 'Put Output File in Field',
		name: 'binaryPropertyName',
		type: 'string',
		default: 'data',
		required: true,
		hint: 'The name of the output binary field to put the QR image (JPEG) in',
		displayOptions: { show: showFor },
	},
];

/** A file name that is safe on every OS, derived from the scene or the ticket. */
export function imageFileName(label: string): string {
	const safe = label.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 64);
	return `qrcode-${safe || 'image'}.jpg`;
}

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const ticket = normalizeTicket(this.getNodeParameter('ticket', itemIndex));
	const binaryPropertyName = (this.getNodeParameter('binaryPropertyName', itemIndex) as string) || 'data';
	const { mpBaseUrl } = await getBaseUrls(this);
	const imageUrl = qrImageUrl(mpBaseUrl, ticket);
	const image = await downloadQrImage.call(this, imageUrl, itemIndex);
	return {
		json: { ticket, imageUrl, mimeType: image.mimeType, fileSize: image.data.length },
		binary: {
			[binaryPropertyName]: await this.helpers.prepareBinaryData(image.data, imageFileName(ticket.slice(0, 16)), image.mimeType),
		},
	};
}
