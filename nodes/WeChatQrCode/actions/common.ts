import type { IDataObject, IDisplayOptions, INode, INodeProperties, JsonObject } from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

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

const createdBeforeFailure = new WeakMap<Error, IDataObject>();

/**
 * The error for a step that failed after WeChat had created the item's code (its image download, say). It
 * names the code, and with Continue On Fail the item keeps the code's fields (see `createdBefore`): running
 * the item again would create another code, and a permanent one is one of the account's 100,000.
 */
export function failedAfterCreate(node: INode, cause: NodeApiError, created: IDataObject, itemIndex: number): NodeApiError {
	const error = new NodeApiError(node, {} as JsonObject, {
		message: `The QR code was created, but: ${cause.message}`,
		description: `WeChat created this code (ticket ${String(created.ticket)}, url ${String(created.url)}). Do not run this item again, which would create another code; get its image with Get QR Image and this ticket. ${cause.description ?? ''}`.trim(),
		itemIndex,
	});
	createdBeforeFailure.set(error, created);
	return error;
}

/** What WeChat created before the item failed (empty when nothing was). */
export function createdBefore(error: Error): IDataObject {
	return createdBeforeFailure.get(error) ?? {};
}
