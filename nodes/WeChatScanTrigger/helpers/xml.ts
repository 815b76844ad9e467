/**
 * WeChat push XML (protocol notes §5): a flat `<xml>` element whose children carry the fields, strings
 * in CDATA and numbers as bare text. We parse the raw body ourselves because n8n's XML body parser
 * lower-cases tag names.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export type WeChatXmlFailure = 'too-large' | 'malformed' | 'doctype' | 'not-wechat-xml';

const FAILURE_MESSAGES: Record<WeChatXmlFailure, string> = {
	'too-large': 'XML body exceeds the size limit',
	malformed: 'XML body is not well-formed',
	doctype: 'XML body contains a DOCTYPE or ENTITY declaration, which is never accepted',
	'not-wechat-xml': 'XML body is not a WeChat message (the root element must be <xml> with child elements)',
};

/** A body that is not an acceptable WeChat XML message. The message never quotes the body. */
export class WeChatXmlError extends Error {
	readonly reason: WeChatXmlFailure;

	constructor(reason: WeChatXmlFailure) {
		super(FAILURE_MESSAGES[reason]);
		this.name = 'WeChatXmlError';
		this.reason = reason;
	}
}

export const DEFAULT_MAX_XML_BYTES = 64 * 1024;

/** `<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`…; a CDATA section (`<![`) or a comment (`<!-`) does not match. */
const DECLARATION_PATTERN = /<![A-Za-z]/;
const CDATA_OPEN = '<![CDATA[';
const CDATA_CLOSE = ']]>';
/** What may follow `<!` as markup in a WeChat body: a CDATA section or a comment, each with its end. */
const SECTIONS: ReadonlyArray<readonly [open: string, close: string]> = [
	[CDATA_OPEN, CDATA_CLOSE],
	['<!--', '-->'],
];

/**
 * Whether the body declares anything (`<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`…) as markup. Text inside CDATA
 * is not markup: a follower may send "<!doctype html>", and a scene string may hold "<!ENTITY x>". Only
 * bodies that mention a declaration at all are scanned section by section.
 */
function declaresMarkup(text: string): boolean {
	if (!DECLARATION_PATTERN.test(text)) return false;
	for (let at = text.indexOf('<!'); at !== -1; ) {
		const section = SECTIONS.find(([open]) => text.startsWith(open, at));
		if (!section) return true;
		const [open, close] = section;
		const end = text.indexOf(close, at + open.length);
		// An unclosed section swallows the rest of the body, which the parser then refuses as malformed.
		if (end === -1) return false;
		at = text.indexOf('<!', end + close.length);
	}
	return false;
}

/** WeChat's deepest documented element (SendPicsInfo/PicList/item/PicMd5Sum) is 5 levels below <xml>. */
const MAX_NESTED_TAGS = 32;

/**
 * Created once: the per-push path only runs `parse`. Values stay strings (OpenIDs and scenes like
 * "007" must survive), entity processing is off (no expansion, ever) and attributes are ignored.
 */
const parser = new XMLParser({
	ignoreAttributes: true,
	parseTagValue: false,
	processEntities: false,
	htmlEntities: false,
	ignoreDeclaration: true,
	ignorePiTags: true,
	maxNestedTags: MAX_NESTED_TAGS,
});

/**
 * Parses a WeChat XML body into its direct `<xml>` children, names and case as sent, values as
 * strings with CDATA unwrapped (line endings normalised to LF, as XML requires). Nested elements
 * (e.g. ScanCodeInfo of menu events) are skipped; for a repeated element the first occurrence wins.
 * Entity references in non-CDATA text are kept verbatim (WeChat puts every string in CDATA). Bodies
 * with a markup declaration (`<!DOCTYPE`, `<!ENTITY`…) outside CDATA are refused outright.
 * Throws WeChatXmlError.
 */
export function parseWeChatXml(raw: Buffer | string, maxBytes: number = DEFAULT_MAX_XML_BYTES): Record<string, string> {
	const byteLength = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.length;
	if (byteLength > maxBytes) throw new WeChatXmlError('too-large');
	let text = typeof raw === 'string' ? raw : raw.toString('utf8');
	if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
	if (declaresMarkup(text)) throw new WeChatXmlError('doctype');
	const flat = readFlatWeChatXml(text);
	if (flat !== undefined) return flat;
	if (XMLValidator.validate(text) !== true) throw new WeChatXmlError('malformed');

	let document: unknown;
	try {
		document = parser.parse(text);
	} catch {
		// The validator accepts a few things the parser refuses (e.g. `__proto__` as a tag name, deep nesting).
		document = undefined;
	}
	if (typeof document !== 'object' || document === null) throw new WeChatXmlError('malformed');
	return flattenRoot(document as Record<string, unknown>);
}

/** Capitalised like every WeChat field, which rules out the names XMLParser refuses or renames (`__proto__`, `toString`…). */
const FLAT_NAME_PATTERN = /^[A-Z][A-Za-z0-9_]*$/;
function skipSpaces(text: string, index: number): number {
	let i = index;
	for (let c = text.charCodeAt(i); c === 0x20 || c === 0x09 || c === 0x0a; c = text.charCodeAt(++i));
	return i;
}

/**
 * One pass over the shape every WeChat push has: `<xml>`, then only elements named like WeChat's fields,
 * each holding one CDATA section or plain text (no markup, no `&`), spaces, tabs or newlines between them,
 * `</xml>` and nothing but those after it. XMLValidator and XMLParser accept such a body and give exactly
 * this (CDATA verbatim, text trimmed, the first of a repeated element), but cost 10–20 µs per document,
 * twice per encrypted push; this costs about 2 µs. Anything else (a carriage return, a declaration, a
 * comment, an attribute, nesting, an entity, a malformed tag) returns undefined and takes the full path,
 * so every rejection is still theirs. test/xmlFastPath.test.ts checks that both paths agree.
 */
function readFlatWeChatXml(text: string): Record<string, string> | undefined {
	if (!text.startsWith('<xml>') || text.includes('\r')) return undefined;
	const message: Record<string, string> = {};
	let i = '<xml>'.length;
	for (;;) {
		i = skipSpaces(text, i);
		if (text.startsWith('</xml>', i)) return skipSpaces(text, i + '</xml>'.length) === text.length ? message : undefined;
		if (text.charCodeAt(i) !== 0x3c) return undefined; // '<'
		const nameEnd = text.indexOf('>', i + 1);
		if (nameEnd === -1) return undefined;
		const name = text.slice(i + 1, nameEnd);
		if (!FLAT_NAME_PATTERN.test(name)) return undefined;

		let value: string;
		let valueEnd: number;
		if (text.startsWith(CDATA_OPEN, nameEnd + 1)) {
			const cdataEnd = text.indexOf(CDATA_CLOSE, nameEnd + 1 + CDATA_OPEN.length);
			if (cdataEnd === -1) return undefined;
			value = text.slice(nameEnd + 1 + CDATA_OPEN.length, cdataEnd);
			valueEnd = cdataEnd + CDATA_CLOSE.length;
		} else {
			valueEnd = text.indexOf('<', nameEnd + 1);
			if (valueEnd === -1) return undefined;
			value = text.slice(nameEnd + 1, valueEnd);
			if (value.includes('&')) return undefined;
			value = value.trim();
		}
		const closingTag = `</${name}>`;
		if (!text.startsWith(closingTag, valueEnd)) return undefined;
		if (message[name] === undefined) message[name] = value;
		i = valueEnd + closingTag.length;
	}
}

function flattenRoot(document: Record<string, unknown>): Record<string, string> {
	const rootNames = Object.keys(document);
	if (rootNames.length !== 1 || rootNames[0] !== 'xml') throw new WeChatXmlError('not-wechat-xml');
	const root = document.xml;
	if (root === '') return {}; // <xml></xml> or <xml/>
	if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new WeChatXmlError('not-wechat-xml');
	const message: Record<string, string> = {};
	for (const name of Object.keys(root)) {
		if (name === '#text') continue; // stray text between elements
		const value = (root as Record<string, unknown>)[name];
		const first = Array.isArray(value) ? value[0] : value;
		if (typeof first === 'string') message[name] = first;
	}
	return message;
}

/**
 * XML 1.0 forbids these characters even inside CDATA, and WeChat answers a reply that is not
 * well-formed with a "service unavailable" notice, so they are dropped.
 */
// eslint-disable-next-line no-control-regex
const XML_ILLEGAL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

export function withoutXmlIllegalCharacters(value: string): string {
	return value.replace(XML_ILLEGAL_CHARACTERS, '');
}

/** One or more CDATA sections; a `]]>` in the value is split across two sections. */
export function cdata(value: string): string {
	const clean = withoutXmlIllegalCharacters(value);
	const escaped = clean.indexOf(']]>') === -1 ? clean : clean.split(']]>').join(']]]]><![CDATA[>');
	return `<![CDATA[${escaped}]]>`;
}

const ELEMENT_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * A flat WeChat XML document: strings in CDATA, numbers as bare text, in the given key order.
 * Element names must be plain XML names (letters, digits, `_`, `.`, `-`).
 */
export function buildWeChatXml(fields: Record<string, string | number>): string {
	let xml = '<xml>';
	for (const name of Object.keys(fields)) {
		if (!ELEMENT_NAME_PATTERN.test(name)) throw new Error(`Invalid XML element name: ${JSON.stringify(name)}`);
		const value = fields[name];
		xml += `<${name}>${typeof value === 'number' ? integerText(value, name) : cdata(value)}</${name}>`;
	}
	return `${xml}</xml>`;
}

function integerText(value: number, name: string): string {
	if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
	return String(value);
}

export interface TextReply {
	/** The user's OpenID: the incoming FromUserName. */
	toUserName: string;
	/** The account's original ID (`gh_...`): the incoming ToUserName. */
	fromUserName: string;
	/** Unix seconds. */
	createTime: number;
	content: string;
}

/** WeChat's passive text reply (protocol notes §5.4). */
export function buildTextReplyXml(reply: TextReply): string {
	return (
		`<xml><ToUserName>${cdata(reply.toUserName)}</ToUserName>` +
		`<FromUserName>${cdata(reply.fromUserName)}</FromUserName>` +
		`<CreateTime>${integerText(reply.createTime, 'createTime')}</CreateTime>` +
		`<MsgType><![CDATA[text]]></MsgType>` +
		`<Content>${cdata(reply.content)}</Content></xml>`
	);
}

export interface EncryptedReply {
	encrypt: string;
	msgSignature: string;
	/** Unix seconds; the same text that went into msgSignature. */
	timeStamp: string | number;
	nonce: string;
}

const DIGITS_PATTERN = /^\d+$/;

/** The safe-mode reply envelope (protocol notes §6). */
export function buildEncryptedReplyXml(reply: EncryptedReply): string {
	const timeStamp = String(reply.timeStamp);
	if (!DIGITS_PATTERN.test(timeStamp)) throw new Error('timeStamp must be a string of digits');
	return (
		`<xml><Encrypt>${cdata(reply.encrypt)}</Encrypt>` +
		`<MsgSignature>${cdata(reply.msgSignature)}</MsgSignature>` +
		`<TimeStamp>${timeStamp}</TimeStamp>` +
		`<Nonce>${cdata(reply.nonce)}</Nonce></xml>`
	);
}
