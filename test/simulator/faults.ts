/** Fault injection: rules are checked in insertion order when a request arrives. */
import type { FaultRule } from './types';
import { createPrng } from './random';

interface ActiveRule {
	rule: FaultRule;
	/** Remaining applications; Infinity when the rule has no `times`. */
	remaining: number;
	random: () => number;
}

export class FaultSet {
	private rules: ActiveRule[] = [];

	constructor(private readonly sharedRandom: () => number) {}

	add(rule: FaultRule): void {
		if (rule.times !== undefined && (!Number.isInteger(rule.times) || rule.times < 0)) {
			throw new RangeError(`FaultRule.times must be a non-negative integer, got ${rule.times}`);
		}
		if (rule.probability !== undefined && !(rule.probability >= 0 && rule.probability <= 1)) {
			throw new RangeError(`FaultRule.probability must be within 0..1, got ${rule.probability}`);
		}
		this.rules.push({
			rule: { ...rule },
			remaining: rule.times ?? Infinity,
			random: rule.seed === undefined ? this.sharedRandom : createPrng(rule.seed),
		});
	}

	clear(): void {
		this.rules = [];
	}

	/** The rule to apply to this request, if any; consumes one of its `times`. */
	take(path: string): FaultRule | undefined {
		for (const active of this.rules) {
			if (active.remaining <= 0) continue;
			if (active.rule.path !== '*' && active.rule.path !== path) continue;
			if (active.rule.probability !== undefined && active.random() >= active.rule.probability) continue;
			active.remaining--;
			if (active.remaining <= 0) this.rules = this.rules.filter((r) => r !== active);
			return active.rule;
		}
		return undefined;
	}
}
