import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

import { InvalidParameterError } from '../helpers/qrCodeRules';
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

export async function router(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
	const items = this.getInputData();
	const returnData: INodeExecutionData[] = [];

	for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
		const resource = this.getNodeParameter('resource', itemIndex) as string;
		const operation = this.getNodeParameter('operation', itemIndex) as string;
		try {
			const execute = operations[resource]?.[operation];
			if (!execute) {
				throw new NodeOperationError(this.getNode(), `The operation "${operation}" of resource "${resource}" is not supported`, { itemIndex });
			}
			const result = await execute.call(this, itemIndex);
			returnData.push({ ...result, pairedItem: { item: itemIndex } });
		} catch (error) {
			const nodeError = toNodeError(this, error, itemIndex);
			if (!this.continueOnFail()) throw nodeError;
			returnData.push({
				json: { error: nodeError.message, description: nodeError.description ?? null },
				pairedItem: { item: itemIndex },
			});
		}
	}
	return [returnData];
}
