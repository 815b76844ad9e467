import type { INodeProperties } from 'n8n-workflow';

import * as createShortKey from './createShortKey.operation';
import * as resolveShortKey from './resolveShortKey.operation';
import * as shortenUrl from './shortenUrl.operation';

export { createShortKey, resolveShortKey, shortenUrl };

export const description: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: ['shortLink'] } },
		options: [
			{
				name: 'Create Short Key',
				value: 'createShortKey',
				description: 'Store up to 4 KB of data behind a 15-character key (WeChat\'s current replacement for short links)',
				action: 'Create a short key',
			},
			{
				name: 'Resolve Short Key',
				value: 'resolveShortKey',
				description: 'Read back the data stored behind a short key',
				action: 'Resolve a short key',
			},
			{
				name: 'Shorten URL',
				value: 'shortenUrl',
				description: 'Shorten a URL with long2short (retired by WeChat in 2021)',
				action: 'Shorten a URL',
			},
		],
		default: 'createShortKey',
	},
	...createShortKey.description,
	...resolveShortKey.description,
	...shortenUrl.description,
];
