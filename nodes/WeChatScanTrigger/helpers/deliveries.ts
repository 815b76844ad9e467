/**
 * What became of a push the trigger handed to n8n. n8n answers it only after storing its execution (200) or
 * failing to (an error status), and it ends the response even when WeChat has already hung up after its
 * 5 s limit; Node then emits no 'finish', so a re-send of that push looks at the response itself.
 */
import { sleep } from 'n8n-workflow';

/** How long a re-send waits for n8n to answer the delivery before it, within WeChat's 5 s per try. */
export const RESEND_WAIT_MS = 4_000;

/** How long an unanswered delivery is kept for re-sends: WeChat's three tries span about 15 s. */
const KEEP_UNANSWERED_MS = 30_000;

const POLL_MS = 50;

/** The parts of n8n's response object (Node's ServerResponse) that tell what n8n answered. */
export interface DeliveryResponse {
	statusCode: number;
	writableEnded: boolean;
}

export type DeliveryState = 'stored' | 'refused' | 'storing';

export function deliveryState(res: DeliveryResponse): DeliveryState {
	if (!res.writableEnded) return 'storing';
	return res.statusCode === 200 ? 'stored' : 'refused';
}

/** The state once n8n has answered `res`, or 'storing' when it has not after `maxWaitMs`. */
export async function settledDelivery(res: DeliveryResponse, maxWaitMs = RESEND_WAIT_MS): Promise<DeliveryState> {
	for (let waited = 0; ; waited += POLL_MS) {
		const state = deliveryState(res);
		if (state !== 'storing' || waited >= maxWaitMs) return state;
		await sleep(POLL_MS);
	}
}

/**
 * The deliveries of one trigger node that n8n has not answered yet, by event key. An entry leaves when its
 * answer is sent, or after KEEP_UNANSWERED_MS when WeChat hung up first and no re-send came to look at it.
 */
export class UnansweredDeliveries {
	private readonly entries = new Map<string, { res: DeliveryResponse; at: number }>();

	constructor(private readonly now: () => number = Date.now) {}

	get size(): number {
		return this.entries.size;
	}

	/** Whether no delivery within KEEP_UNANSWERED_MS is waiting for n8n's answer. */
	isEmpty(): boolean {
		this.dropExpired(this.now());
		return this.entries.size === 0;
	}

	private dropExpired(now: number): void {
		// Entries are in the order they were added, so the expired ones are at the front.
		for (const [oldKey, entry] of this.entries) {
			if (now - entry.at < KEEP_UNANSWERED_MS) break;
			this.entries.delete(oldKey);
		}
	}

	get(key: string): DeliveryResponse | undefined {
		return this.entries.get(key)?.res;
	}

	add(key: string, res: DeliveryResponse): void {
		const now = this.now();
		this.dropExpired(now);
		this.entries.delete(key);
		this.entries.set(key, { res, at: now });
	}

	/**
	 * Removes `key` if it still belongs to `res`. False when a re-send has taken its place, which then
	 * decides the event.
	 */
	answered(key: string, res: DeliveryResponse): boolean {
		const current = this.entries.get(key)?.res;
		if (current === res) this.entries.delete(key);
		return current === undefined || current === res;
	}
}
