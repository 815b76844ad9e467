import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

import { InvalidParameterError } from '../helpers/qrCodeRules';
import { createdBefore, DEFAULT_CONCURRENCY, MAX_CONCURRENCY } from './common';
import * as qrCode from './qrCode';
import * as shortLink from './shortLink';

type OperationExecute = (this: IExecuteFunctions, itemIndex: number) => Promise<INodeExecutionData>;

const operations: Record<string, Record<string, OperationExecute>> = {
	qrCode: { createTicket: qrCode.createTicket.execute, getImage: qrCode.getImage.execute },
	shortLink: {
		createShortKey: shortLink.createShortKey.execute,
		resolveShortKey: shortLink.resolveShortKey.execute,
		shortenUrl: shortLink.shortenUrl.execute,
	},
};

/** Bad parameters name the parameter; WeChat and transport errors are already NodeApiErrors. */
function toNodeError(ctx: IExecuteFunctions, error: unknown, itemIndex: number): NodeApiError | NodeOperationError {
	if (error instanceof NodeApiError || error instanceof NodeOperationError) return error;
	if (error instanceof InvalidParameterError) {
		return new NodeOperationError(ctx.getNode(), error.message, {
			itemIndex,
			description: `Fix the "${error.parameter}" parameter of this item.`,
		});
	}
	return new NodeOperationError(ctx.getNode(), error as Error, { itemIndex });
}

function concurrencyOf(ctx: IExecuteFunctions): number {
	const value = Number(ctx.getNodeParameter('options.concurrency', 0, DEFAULT_CONCURRENCY));
	return Number.isInteger(value) ? Math.min(Math.max(value, 1), MAX_CONCURRENCY) : DEFAULT_CONCURRENCY;
}

/**
 * Runs every item through its operation, at most `concurrency` at a time, and returns the results in item
 * order, each paired with its item. Without Continue On Fail the first failing item (in item order) stops the
 * node once the items already sent have finished; no new item starts after a failure.
 */
export async function router(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
	const items = this.getInputData();
	const results: Array<INodeExecutionData | undefined> = new Array(items.length);
	const failures = new Map<number, NodeApiError | NodeOperationError>();
	const continueOnFail = this.continueOnFail();
	const toErrorOutput = this.getNode().onError === 'continueErrorOutput';
	let next = 0;

	const runItem = async (itemIndex: number): Promise<void> => {
		try {
			const resource = this.getNodeParameter('resource', itemIndex) as string;
			const operation = this.getNodeParameter('operation', itemIndex) as string;
			const execute = operations[resource]?.[operation];
			if (!execute) {
				throw new NodeOperationError(this.getNode(), `The operation "${operation}" of resource "${resource}" is not supported`, { itemIndex });
			}
			const result = await execute.call(this, itemIndex);
			results[itemIndex] = { ...result, pairedItem: { item: itemIndex } };
		} catch (error) {
			const nodeError = toNodeError(this, error, itemIndex);
			if (!continueOnFail) {
				failures.set(itemIndex, nodeError);
				return;
			}
			// n8n sends an item to the error output ("Continue (using error output)") only when its keys are
			// among error, message and details. On the regular output, what WeChat already created stays in the
			// item; the error output has it in the description, which names the ticket.
			const description = nodeError.description ?? null;
			results[itemIndex] = {
				json: toErrorOutput ? { error: nodeError.message, details: description } : { ...createdBefore(nodeError), error: nodeError.message, description },
				pairedItem: { item: itemIndex },
			};
		}
	};

	const worker = async (): Promise<void> => {
		while (next < items.length && failures.size === 0) await runItem(next++);
	};
	await Promise.all(Array.from({ length: Math.min(concurrencyOf(this), items.length) }, worker));

	if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
	return [results as INodeExecutionData[]];
}
