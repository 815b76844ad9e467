/**
 * Access-token state: stable_token and the classic cgi-bin/token are fully isolated from each other
 * (protocol reference §1); both kinds are checked the same way by business APIs.
 */
import { randomAccessToken } from './random';

type TokenKind = 'stable' | 'classic';

interface TokenRecord {
	token: string;
	kind: TokenKind;
	expiresAt: number;
	/** From this instant the token answers 40001 (superseded or force-invalidated). */
	invalidAt: number;
	/** Set by expireAllTokens(): answers 42001 whatever else happened. */
	forcedExpired: boolean;
}

/** 0 = valid, else the errcode a business API answers for this token. */
export type TokenCheck = 0 | 40014 | 40001 | 42001;

export type StableTokenResult =
	| { ok: true; token: string; expiresIn: number }
	| { ok: false; errcode: 45009 };

const ROTATE_BEFORE_EXPIRY_MS = 5 * 60_000;
const CLASSIC_OVERLAP_MS = 5 * 60_000;
const FORCE_REFRESH_PER_DAY = 20;
const FORCE_REFRESH_MIN_GAP_MS = 30_000;
/** WeChat's quota days start at midnight Beijing time (UTC+8). */
const BEIJING_OFFSET_MS = 8 * 3_600_000;

export function beijingDay(nowMs: number): number {
	return Math.floor((nowMs + BEIJING_OFFSET_MS) / 86_400_000);
}

export class TokenStore {
	private readonly byToken = new Map<string, TokenRecord>();
	private readonly issuedInOrder: string[] = [];
	private currentStable: TokenRecord | undefined;
	private currentClassic: TokenRecord | undefined;
	private lastForceAt = -Infinity;
	private forceDay = -1;
	private forceCountToday = 0;

	/** 5 minutes, or half the lifetime when tests configure very short tokens (else every call would rotate). */
	private readonly rotateBeforeExpiryMs: number;

	constructor(
		private readonly ttlMs: number,
		private readonly now: () => number,
	) {
		this.rotateBeforeExpiryMs = Math.min(ROTATE_BEFORE_EXPIRY_MS, ttlMs / 2);
	}

	check(token: string): TokenCheck {
		const record = this.byToken.get(token);
		if (!record) return 40014;
		return this.status(record, this.now());
	}

	/** stable_token; `force` follows the 20/day and 30 s rules. */
	stable(force: boolean): StableTokenResult {
		const now = this.now();
		if (force) {
			const day = beijingDay(now);
			if (day !== this.forceDay) {
				this.forceDay = day;
				this.forceCountToday = 0;
			}
			if (this.forceCountToday >= FORCE_REFRESH_PER_DAY) return { ok: false, errcode: 45009 };
			// A force call sooner than 30 s after the previous one does not refresh.
			if (now - this.lastForceAt >= FORCE_REFRESH_MIN_GAP_MS) {
				this.forceRefreshStable(now);
			}
		}
		let current = this.currentStable;
		if (!current || this.status(current, now) !== 0) {
			current = this.issueStable(now);
		} else if (current.expiresAt - now <= this.rotateBeforeExpiryMs) {
			// Rotation in the last 5 minutes: the old token stays valid until its own expiry.
			current = this.issueStable(now);
		}
		return { ok: true, token: current.token, expiresIn: Math.max(0, Math.floor((current.expiresAt - now) / 1000)) };
	}

	/** cgi-bin/token: always a new token; the previous one keeps working for 5 more minutes. */
	classic(): { token: string; expiresIn: number } {
		const now = this.now();
		if (this.currentClassic) {
			this.currentClassic.invalidAt = Math.min(this.currentClassic.invalidAt, now + CLASSIC_OVERLAP_MS);
		}
		const record = this.issue('classic', now);
		this.currentClassic = record;
		return { token: record.token, expiresIn: Math.floor(this.ttlMs / 1000) };
	}

	/** Another system used force_refresh: counts toward the day's 20 and restarts the 30 s window. */
	forceRefreshByOtherSystem(): void {
		const now = this.now();
		const day = beijingDay(now);
		if (day !== this.forceDay) {
			this.forceDay = day;
			this.forceCountToday = 0;
		}
		this.forceRefreshStable(now);
	}

	expireAll(): void {
		for (const record of this.byToken.values()) record.forcedExpired = true;
	}

	issued(): string[] {
		return [...this.issuedInOrder];
	}

	resetCounters(): void {
		this.lastForceAt = -Infinity;
		this.forceDay = -1;
		this.forceCountToday = 0;
	}

	private forceRefreshStable(now: number): void {
		// Invalidates every stable token still alive (the current one and any rotation overlap).
		for (const record of this.byToken.values()) {
			if (record.kind === 'stable') record.invalidAt = Math.min(record.invalidAt, now);
		}
		this.issueStable(now);
		this.lastForceAt = now;
		this.forceCountToday++;
	}

	private issueStable(now: number): TokenRecord {
		const record = this.issue('stable', now);
		this.currentStable = record;
		return record;
	}

	private issue(kind: TokenKind, now: number): TokenRecord {
		let token = randomAccessToken();
		// Collisions are astronomically unlikely; a bounded retry keeps the map consistent anyway.
		for (let attempt = 0; attempt < 4 && this.byToken.has(token); attempt++) token = randomAccessToken();
		const record: TokenRecord = { token, kind, expiresAt: now + this.ttlMs, invalidAt: Infinity, forcedExpired: false };
		this.byToken.set(token, record);
		this.issuedInOrder.push(token);
		return record;
	}

	private status(record: TokenRecord, now: number): TokenCheck {
		if (record.forcedExpired) return 42001;
		const expired = now >= record.expiresAt;
		const invalidated = now >= record.invalidAt;
		if (expired && invalidated) return record.expiresAt <= record.invalidAt ? 42001 : 40001;
		if (invalidated) return 40001;
		if (expired) return 42001;
		return 0;
	}
}
