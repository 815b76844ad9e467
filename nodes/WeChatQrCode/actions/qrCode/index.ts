import type { INodeProperties } from 'n8n-workflow';

import * as createTicket from './createTicket.operation';
import * as getImage from './getImage.operation';

export { createTicket, getImage };

export const description: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: ['qrCode'] } },
		options: [
			{
				name: 'Create QR Ticket',
				value: 'createTicket',
				description: 'Create a temporary or permanent parametric QR code carrying a scene value',
				action: 'Create a QR ticket',
			},
			{
				name: 'Get QR Image',
				value: 'getImage',
				description: 'Download the QR image (JPEG) of a ticket into binary data',
				action: 'Get a QR image',
			},
		],
		default: 'createTicket',
	},
	...createTicket.description,
	...getImage.description,
];
