import type { IBinaryData, IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { normalizeTicket, qrImageUrl } from '../../helpers/qrCodeRules';
import { downloadQrImage, getBaseUrls, invalidTicketError } from '../../transport';
import { optionsCollection } from '../common';

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
	optionsCollection(showFor),
];

/** A file name that is safe on every OS, derived from the scene or the ticket. */
export function imageFileName(label: string): string {
	const safe = label.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 64);
	return `qrcode-${safe || 'image'}.jpg`;
}

/** Streams the image into n8n's binary data (to disk in filesystem mode), so a batch never holds every image. */
export async function qrImageBinary(this: IExecuteFunctions, imageUrl: string, fileName: string, itemIndex: number): Promise<IBinaryData> {
	const image = await downloadQrImage.call(this, imageUrl, itemIndex);
	const binary = await this.helpers.prepareBinaryData(image.stream, fileName, image.mimeType);
	if (!binary.bytes) throw invalidTicketError(this, 200, image.mimeType, itemIndex);
	return binary;
}

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const ticket = normalizeTicket(this.getNodeParameter('ticket', itemIndex));
	const binaryPropertyName = (this.getNodeParameter('binaryPropertyName', itemIndex) as string) || 'data';
	const { mpBaseUrl } = await getBaseUrls(this);
	const imageUrl = qrImageUrl(mpBaseUrl, ticket);
	const binary = await qrImageBinary.call(this, imageUrl, imageFileName(ticket.slice(0, 16)), itemIndex);
	return {
		json: { ticket, imageUrl, mimeType: binary.mimeType, fileSize: binary.bytes ?? null },
		binary: { [binaryPropertyName]: binary },
	};
}
