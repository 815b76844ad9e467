/**
 * The node's `__schema__` files (what n8n's editor shows for an output before any run) checked against a
 * real output item: every field listed, and each value of a type the schema allows.
 */
import { readFileSync } from 'node:fs';

export interface OutputSchema {
	type: string | string[];
	properties?: Record<string, OutputSchema>;
}

export function readOutputSchema(relativeToRepo: string): OutputSchema {
	return JSON.parse(readFileSync(new URL(`../../${relativeToRepo}`, import.meta.url), 'utf8')) as OutputSchema;
}

/** Where `value` does not match `schema`: a field missing from either side, or a value of another type. */
export function schemaMismatches(schema: OutputSchema, value: unknown, path = '$'): string[] {
	const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
	const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
	if (!allowed.includes(actual)) return [`${path}: the schema allows ${allowed.join('/')}, the output has ${actual} (${JSON.stringify(value)})`];
	if (actual !== 'object' || !schema.properties) return [];
	const fields = value as Record<string, unknown>;
	return [
		...Object.keys(fields)
			.filter((key) => !(key in (schema.properties ?? {})))
			.map((key) => `${path}.${key}: in the output, not in the schema`),
		...Object.entries(schema.properties).flatMap(([key, fieldSchema]) =>
			key in fields ? schemaMismatches(fieldSchema, fields[key], `${path}.${key}`) : [],
		),
	];
}
