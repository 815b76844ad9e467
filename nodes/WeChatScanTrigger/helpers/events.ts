/**
 * Scan-related WeChat events (protocol notes §5.2, §5.3): classification, scene extraction, scene
 * filters, the trigger's output item and retry de-duplication. Plain functions with no n8n dependency.
 */
import { RecentKeys } from './recentKeys';

/** A WeChat push as parsed from XML: element names as sent, every value a string. */
export type WeChatMessage = Record<string, string>;

export type ScanEventKind = 'subscribeScene' | 'scan' | 'subscribe' | 'unsubscribe';

const SCENE_PREFIX = 'qrscene_';
const MAX_SCENE_ID = 4294967295;
const CANONICAL_UINT_PATTERN = /^(?:0|[1-9]\d{0,9})$/;
const DIGITS_PATTERN = /^\d+$/;

/**
 * The scan-trigger kind of a push, or null for anything else (LOCATION, CLICK, user messages...).
 * `Event` casing is mixed (`subscribe` vs `SCAN`), so it is compared case-insensitively.
 */
export function classifyEvent(message: WeChatMessage): ScanEventKind | null {
	if (message.MsgType === undefined || message.MsgType.toLowerCase() !== 'event') return null;
	switch (message.Event === undefined ? '' : message.Event.toLowerCase()) {
		case 'subscribe':
			return message.EventKey !== undefined && message.EventKey.startsWith(SCENE_PREFIX) ? 'subscribeScene' : 'subscribe';
		case 'scan':
			return 'scan';
		case 'unsubscribe':
			return 'unsubscribe';
		default:
			return null;
	}
}

/**
 * §5.2: `subscribe` carries `qrscene_<scene>`, `SCAN` the bare scene; nothing else has a scene
 * (a plain follow may send an empty EventKey).
 */
export function sceneFromEventKey(event: string | undefined, eventKey: string | undefined): string | null {
	if (event === undefined || eventKey === undefined) return null;
	const kind = event.toLowerCase();
	if (kind === 'subscribe') return eventKey.startsWith(SCENE_PREFIX) ? eventKey.slice(SCENE_PREFIX.length) : null;
	return kind === 'scan' ? eventKey : null;
}

/**
 * The numeric scene_id when the scene is one: WeChat echoes scene_id as a plain decimal, so only
 * canonical non-negative integers up to 2^32-1 count. "007" is a scene_str (WeChat would send "7").
 */
export function sceneIdFromScene(scene: string | null): number | null {
	if (scene === null || !CANONICAL_UINT_PATTERN.test(scene)) return null;
	const id = Number(scene);
	return id <= MAX_SCENE_ID ? id : null;
}

/**
 * Scene filters as typed by a user: comma- or newline-separated, trimmed, blanks dropped.
 * `store_*` is a prefix filter.
 */
export function parseSceneFilters(text: string): string[] {
	return text
		.split(/[,\n\r]/)
		.map((filter) => filter.trim())
		.filter((filter) => filter !== '');
}

/**
 * No filters: everything passes, including pushes without a scene (plain follows, unfollows).
 * Otherwise the scene must equal a filter, or start with a filter's text before a trailing `*`.
 */
export function matchesSceneFilter(scene: string | null, filters: string[]): boolean {
	if (filters.length === 0) return true;
	if (scene === null) return false;
	for (const filter of filters) {
		if (filter.endsWith('*') ? scene.startsWith(filter.slice(0, -1)) : scene === filter) return true;
	}
	return false;
}

export interface ScanEventOutput {
	/** `Event` as sent (`subscribe`, `SCAN`, ...). */
	event: string;
	/** A follow, with or without a QR scene. */
	isNewFollower: boolean;
	/** FromUserName: the user's OpenID for this account. */
	openId: string;
	/** ToUserName: the account's original ID (`gh_...`). */
	accountId: string;
	/** Without the `qrscene_` prefix; null when the push has no scene. */
	scene: string | null;
	sceneId: number | null;
	ticket: string | null;
	/** Unix seconds; null when CreateTime is missing or not an integer. */
	createTime: number | null;
	/** Every field as received (the same object, not a copy). */
	message: WeChatMessage;
}

export function toScanEventOutput(message: WeChatMessage): ScanEventOutput {
	const event = message.Event === undefined ? '' : message.Event;
	const scene = sceneFromEventKey(message.Event, message.EventKey);
	const createTime = message.CreateTime;
	return {
		event,
		isNewFollower: event.toLowerCase() === 'subscribe',
		openId: message.FromUserName === undefined ? '' : message.FromUserName,
		accountId: message.ToUserName === undefined ? '' : message.ToUserName,
		scene,
		sceneId: sceneIdFromScene(scene),
		ticket: message.Ticket === undefined || message.Ticket === '' ? null : message.Ticket,
		createTime: createTime !== undefined && DIGITS_PATTERN.test(createTime) ? Number(createTime) : null,
		message,
	};
}

/**
 * WeChat re-sends a push up to 3 times after a 5 s timeout (§5.3): messages are identified by MsgId,
 * events by sender + CreateTime (+ Event, so a follow and a scan in the same second stay distinct).
 */
export function dedupeKey(message: WeChatMessage): string {
	if (message.MsgId !== undefined && message.MsgId !== '') return `msg:${message.MsgId}`;
	return `event:${message.FromUserName ?? ''}:${message.CreateTime ?? ''}:${message.Event ?? ''}`;
}

/**
 * The trigger's retry memory: event keys seen within the retention time (§5.3; `RecentKeys` holds the rules).
 */
export class RecentEventCache extends RecentKeys {
	/** True when `key` was already seen within the retention time; otherwise records it and returns false. */
	seen(key: string): boolean {
		return this.recordFirst(key) !== undefined;
	}
}
