/**
 * Byte search for secrets in files and texts (the e2e secrets check). Each secret is looked for raw (as UTF-8),
 * URL-encoded, and base64/base64url-encoded at each of the three alignments it can have inside a longer
 * encoded string. A hit names the place, the offset, the secret's name and the form: never the secret itself.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Secret {
	name: string;
	value: string;
}

export interface Needle {
	secret: string;
	form: string;
	bytes: Buffer;
}

export interface Hit {
	where: string;
	offset: number;
	secret: string;
	form: string;
}

export interface FolderScan {
	files: Array<{ file: string; bytes: number }>;
	/** Symbolic links are listed, not followed (the installed package links to the repository's node_modules). */
	symlinks: string[];
	bytes: number;
	hits: Hit[];
}

/**
 * The characters of base64(secret) that do not depend on the bytes around it, when the secret starts at byte
 * `shift` (0, 1 or 2) of a 3-byte group: the leading characters shared with the bytes before and the last
 * character shared with the bytes after are cut.
 */
function base64Core(value: Buffer, shift: number): string {
	const shifted = Buffer.concat([Buffer.alloc(shift), value]);
	const encoded = shifted.toString('base64').replace(/=+$/, '');
	const start = shift === 0 ? 0 : shift + 1;
	const end = shifted.length % 3 === 0 ? encoded.length : encoded.length - 1;
	return encoded.slice(start, end);
}

export function needlesFor(secrets: Secret[]): Needle[] {
	const needles: Needle[] = [];
	for (const { name, value } of secrets) {
		if (value.length < 8) throw new Error(`secret "${name}" is too short to search for (${value.length} characters)`);
		const utf8 = Buffer.from(value, 'utf8');
		const forms = new Map<string, string>([['raw', value]]);
		forms.set('URL-encoded', encodeURIComponent(value));
		for (const shift of [0, 1, 2]) {
			const core = base64Core(utf8, shift);
			forms.set(`base64 (shift ${shift})`, core);
			forms.set(`base64url (shift ${shift})`, core.replace(/\+/g, '-').replace(/\//g, '_'));
		}
		// One needle per distinct string (for these alphabets URL-encoding and base64url often change nothing).
		const seen = new Set<string>();
		for (const [form, text] of forms) {
			if (seen.has(text)) continue;
			seen.add(text);
			needles.push({ secret: name, form, bytes: Buffer.from(text, 'utf8') });
		}
	}
	return needles;
}

export function searchBuffer(data: Buffer, where: string, needles: Needle[]): Hit[] {
	const hits: Hit[] = [];
	for (const needle of needles) {
		for (let offset = data.indexOf(needle.bytes); offset !== -1; offset = data.indexOf(needle.bytes, offset + 1)) {
			hits.push({ where, offset, secret: needle.secret, form: needle.form });
		}
	}
	return hits;
}

/** Every regular file under `dir` (recursively), with its size; links are reported, not followed. */
function walk(dir: string, files: FolderScan['files'], symlinks: string[]): void {
	for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
		const full = path.join(dir, entry.name);
		if (entry.isSymbolicLink()) symlinks.push(full);
		else if (entry.isDirectory()) walk(full, files, symlinks);
		else if (entry.isFile()) files.push({ file: full, bytes: fs.statSync(full).size });
	}
}

export function scanFolder(dir: string, needles: Needle[]): FolderScan {
	const files: FolderScan['files'] = [];
	const symlinks: string[] = [];
	walk(dir, files, symlinks);
	const hits: Hit[] = [];
	let bytes = 0;
	for (const { file } of files) {
		const data = fs.readFileSync(file);
		bytes += data.length;
		hits.push(...searchBuffer(data, path.relative(dir, file), needles));
	}
	return { files, symlinks, bytes, hits };
}

/** A failure line: where, at which byte, which secret in which form (the secret's value is never printed). */
export function describeHit(hit: Hit): string {
	return `${hit.where} @ byte ${hit.offset}: ${hit.secret} (${hit.form})`;
}
