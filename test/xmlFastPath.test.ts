/**
 * Guard of the one-pass reader parseWeChatXml uses for WeChat-shaped bodies (an optimisation made for
 * benchmark 3): for any body, the result must be what XMLValidator + XMLParser give. The reference is the
 * same body behind an XML declaration, which the one-pass reader never takes and the full path ignores.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseWeChatXml, WeChatXmlError } from '../nodes/WeChatScanTrigger/helpers/xml';

const SCALE = Math.max(1, Number(process.env.PROPERTY_RUNS_SCALE ?? 1));
const LIMIT = 1024 * 1024;

function outcome(body: string): Record<string, string> | string {
	try {
		return parseWeChatXml(body, LIMIT);
	} catch (error) {
		expect(error).toBeInstanceOf(WeChatXmlError);
		return `rejected: ${(error as WeChatXmlError).reason}`;
	}
}

const reference = (body: string) => outcome(`<?xml version="1.0" encoding="utf-8"?>${body}`);

/** Mostly what WeChat sends, each part deviating now and then, so whole bodies take either path. */
const usually = <T>(common: fc.Arbitrary<T>, rare: fc.Arbitrary<T>) =>
	fc.oneof({ weight: 8, arbitrary: common }, { weight: 1, arbitrary: rare });

const name = usually(
	fc.constantFrom('ToUserName', 'FromUserName', 'CreateTime', 'MsgType', 'Event', 'EventKey', 'Ticket', 'Encrypt', 'A', 'A_1'),
	fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'prototype', 'hasOwnProperty', 'xml', 'a', '1A', 'A.b', 'A-b', 'A b', 'Ä'),
);
const piece = usually(
	fc.oneof(fc.string({ maxLength: 12 }).filter((t) => !/[<>&\r]/.test(t)), fc.constantFrom(' ', '\t', '\n', '\u00a0', '\u3000', '\ufeff', 'qrscene_', '"', "'", '=', '/', ']', ']]')),
	fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('\r', '\r\n', '<', '>', '&', '&amp;', ']]>', '<![CDATA[', '<!-- c -->', '<b/>')),
);
const text = fc.array(piece, { maxLength: 4 }).map((parts) => parts.join(''));
const value = usually(
	fc.oneof(text, text.map((t) => `<![CDATA[${t}]]>`)),
	fc.oneof(
		fc.tuple(text, text).map(([a, b]) => `<![CDATA[${a}]]>${b}`),
		fc.tuple(text, text).map(([a, b]) => `<![CDATA[${a}]]><![CDATA[${b}]]>`),
	),
);
const element = usually(
	fc.tuple(name, value).map(([n, v]) => `<${n}>${v}</${n}>`),
	fc.oneof(
		fc.tuple(name, value, name).map(([n, v, m]) => `<${n}>${v}</${m}>`),
		fc.tuple(name, text).map(([n, t]) => `<${n} ${t}>x</${n}>`),
		name.map((n) => `<${n}/>`),
		fc.tuple(name, name, value).map(([n, m, v]) => `<${n}><${m}>${v}</${m}></${n}>`),
	),
);
const separator = usually(fc.constantFrom('', '\n', ' ', '\t'), fc.constantFrom('\r\n', ' x ', '<!-- c -->', '&amp;'));
const body = fc
	.tuple(
		usually(fc.constant('<xml>'), fc.constantFrom('<xml >', '<XML>', ' <xml>', '<xml/>')),
		fc.array(fc.tuple(separator, element), { maxLength: 6 }),
		separator,
		usually(fc.constant('</xml>'), fc.constantFrom('</xml >', '</XML>', '', '</xml><xml/>', '</xml>x')),
		usually(fc.constantFrom('', '\n', ' \t\n'), fc.constantFrom('\r\n', 'trailing', '<!-- c -->')),
	)
	.map(([open, children, last, close, after]) => `${open}${children.map(([s, e]) => s + e).join('')}${last}${close}${after}`);

describe('parseWeChatXml one-pass reader', () => {
	it('gives what XMLValidator + XMLParser give, for WeChat-shaped and deviating bodies', () => {
		fc.assert(
			fc.property(body, (xml) => {
				expect(outcome(xml)).toEqual(reference(xml));
			}),
			{ numRuns: Math.round(5000 * SCALE) },
		);
	});

	it('reads real pushes, keeping CDATA verbatim, trimming text and keeping the first of a repeated element', () => {
		const xml =
			'<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\n<CreateTime> 1714112445 </CreateTime><Empty></Empty>' +
			'<EventKey><![CDATA[ qrscene_a b ]]></EventKey><Dup>1</Dup><Dup>2</Dup><Blank><![CDATA[]]></Blank></xml>\n';
		expect(outcome(xml)).toEqual({ ToUserName: 'gh_1', CreateTime: '1714112445', Empty: '', EventKey: ' qrscene_a b ', Dup: '1', Blank: '' });
		expect(outcome(xml)).toEqual(reference(xml));
	});
});
