import { matchesSceneFilter, parseSceneFilters, type ScanEventOutput } from './events';

export interface SceneReply {
	scene: string;
	text: string;
}

/** The first scene reply whose filter matches the scene (exact, or a prefix with `*`), else the default. */
export function chooseReplyText(event: ScanEventOutput, defaultText: string, sceneReplies: SceneReply[]): string {
	for (const reply of sceneReplies) {
		const filters = parseSceneFilters(reply.scene);
		if (filters.length > 0 && matchesSceneFilter(event.scene, filters)) return fillPlaceholders(reply.text, event);
	}
	return fillPlaceholders(defaultText, event);
}

/** `{scene}`, `{sceneId}`, `{openId}`, `{event}` and `{accountId}` are replaced by the event's values. */
export function fillPlaceholders(text: string, event: ScanEventOutput): string {
	const values: Record<string, string> = {
		scene: event.scene ?? '',
		sceneId: event.sceneId === null ? '' : String(event.sceneId),
		openId: event.openId,
		event: event.event,
		accountId: event.accountId,
	};
	return text.replace(/\{(scene|sceneId|openId|event|accountId)\}/g, (_, name: string) => values[name]);
}
