/** Public API of the local WeChat API simulator (see types.ts for the contract). */
export { startSimulator } from './server';
export type {
	FaultRule,
	RecordedRequest,
	RecordedResponse,
	SimulatorOptions,
	TicketInfo,
	WeChatSimulator,
} from './types';
