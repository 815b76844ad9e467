/** Public types of the WeChat API simulator. */

export interface SimulatorOptions {
	/** Default 'wx5imulat0r0000001'. */
	appId?: string;
	/** Default 'simulator-app-secret-0123456789ab'. */
	appSecret?: string;
	/** API IP allow-list; default ['127.0.0.1', '::1', '::ffff:127.0.0.1']. */
	allowedIps?: string[];
	/** Lifetime of every issued access token; default 7200. */
	tokenTtlSeconds?: number;
	/** Injected latency on every api.weixin.qq.com-style call (not showqrcode); default 0. */
	latencyMs?: number;
	/** Injected latency on showqrcode (the mp.weixin.qq.com host); default 0. */
	imageLatencyMs?: number;
	/** Listening port on 127.0.0.1; default 0 (random). */
	port?: number;
	/** Millisecond clock; default Date.now. advanceTime() shifts it further. */
	now?: () => number;
	/** long2short: echo long_url with errcode 0 (default, like the official doc) or answer 45103. */
	shortUrlMode?: 'echo' | 'retired';
	/** Per-API calls per simulated minute before 45011; default unlimited. */
	minuteQuota?: number;
	/** Per-API calls per simulated day before 45009; default unlimited. */
	dailyQuota?: number;
	/** Seed of the PRNG behind FaultRule.probability (rules may carry their own seed); default 1. */
	seed?: number;
}

export interface RecordedResponse {
	/** HTTP status; 0 while unanswered or when the socket was dropped / left hanging. */
	status: number;
	/** errcode of a JSON answer that carried one (0 included). */
	errcode?: number;
}

export interface RecordedRequest {
	method: string;
	/** Path without the query string. */
	path: string;
	query: Record<string, string>;
	/** Parsed JSON, or the raw string when the body is not JSON (also '' for an empty body). */
	body: unknown;
	rawBody: string;
	remoteAddress: string;
	/** Simulated clock (ms) when the request arrived. */
	at: number;
	response: RecordedResponse;
}

export interface FaultRule {
	/** e.g. '/cgi-bin/qrcode/create', or '*' for every path. */
	path: string;
	/** Answer HTTP 200 {errcode, errmsg: '<wechat-like msg> rid: <random>'}. */
	errcode?: number;
	/** Answer this HTTP status (e.g. 502) with a small HTML body. */
	httpStatus?: number;
	/** Destroy the socket without answering (connection reset). */
	drop?: boolean;
	/** Never answer until the client gives up; close() releases it. */
	hang?: boolean;
	/** Extra latency for matching calls (alone: the call is then handled normally). */
	delayMs?: number;
	/** Apply to the next N matching calls; default unlimited until cleared. */
	times?: number;
	/** 0..1, apply randomly using a seeded PRNG. */
	probability?: number;
	/** Seed for this rule's own PRNG; default: the simulator's PRNG (SimulatorOptions.seed). */
	seed?: number;
}

export interface TicketInfo {
	ticket: string;
	url: string;
	actionName: string;
	scene: string | number;
	expireSeconds?: number;
	/** Simulated clock (ms) at creation. */
	createdAt: number;
}

export interface WeChatSimulator {
	/** http://127.0.0.1:PORT */
	url: string;
	/** Same server; stands for https://api.weixin.qq.com */
	apiBaseUrl: string;
	/** Same server; stands for https://mp.weixin.qq.com */
	mpBaseUrl: string;
	appId: string;
	appSecret: string;
	requests: RecordedRequest[];
	requestsTo(path: string): RecordedRequest[];
	/** Successful token answers from stable_token + token. */
	tokenFetches(): number;
	addFault(rule: FaultRule): void;
	clearFaults(): void;
	setLatency(ms: number): void;
	/** Every issued token now answers 42001. */
	expireAllTokens(): void;
	/** Another system force-refreshed: the current stable token answers 40001, stable_token returns a new one. */
	invalidateStableToken(): void;
	advanceTime(seconds: number): void;
	setAllowedIps(ips: string[]): void;
	/** Every access token ever issued (for secret-leak searches). */
	issuedTokens(): string[];
	tickets(): TicketInfo[];
	/** Clear requests, faults, counters (token fetches, quotas, force refreshes), tickets and short keys; keep tokens. */
	reset(): void;
	/** Close the server and every socket, hanging ones included. */
	close(): Promise<void>;
}
