import type { IBinaryData, IBinaryKeyData, IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { normalizeTicket, qrImageUrl } from '../../helpers/qrCodeRules';
import { downloadQrImage, getBaseUrls } from '../../transport';
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

/**
 * The input item's binary fields with the image added (or replacing one of the same name), as n8n's own
 * download nodes do: a file the item already carried is not dropped.
 */
export function withImage(ctx: IExecuteFunctions, itemIndex: number, binaryPropertyName: string, image: IBinaryData): IBinaryKeyData {
	return { ...ctx.getInputData()[itemIndex]?.binary, [binaryPropertyName]: image };
}

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData> {
	const ticket = normalizeTicket(this.getNodeParameter('ticket', itemIndex));
	const binaryPropertyName = (this.getNodeParameter('binaryPropertyName', itemIndex) as string) || 'data';
	const { mpBaseUrl } = await getBaseUrls(this);
	const imageUrl = qrImageUrl(mpBaseUrl, ticket);
	const binary = await downloadQrImage.call(this, imageUrl, imageFileName(ticket.slice(0, 16)), itemIndex);
	return {
		json: { ticket, imageUrl, mimeType: binary.mimeType, fileSize: binary.bytes ?? null },
		binary: withImage(this, itemIndex, binaryPropertyName, binary),
	};
}
