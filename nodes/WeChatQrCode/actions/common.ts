import type { IDisplayOptions, INodeProperties } from 'n8n-workflow';

export const DEFAULT_CONCURRENCY = 5;
export const MAX_CONCURRENCY = 50;

/** Shared by every operation's Options: how many items are sent to WeChat at the same time. */
export const concurrencyOption: INodeProperties = {
	displayName: 'Concurrency',
	name: 'concurrency',
	type: 'number',
	typeOptions: { minValue: 1, maxValue: MAX_CONCURRENCY, numberPrecision: 0 },
	default: DEFAULT_CONCURRENCY,
	description: `How many items are sent to WeChat at the same time (1 to ${MAX_CONCURRENCY}). Output order is kept; WeChat's per-minute quota pauses the whole batch.`,
};

/** An operation's Options collection: its own options plus the shared concurrency. */
export function optionsCollection(show: NonNullable<IDisplayOptions['show']>, options: INodeProperties[] = []): INodeProperties {
	return {
		displayName: 'Options',
		name: 'options',
		type: 'collection',
		placeholder: 'Add Option',
		default: {},
		displayOptions: { show },
		options: [...options, concurrencyOption],
	};
}
