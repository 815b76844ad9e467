/**
 * The editor in a real browser (Debian's chromium driven by playwright-core, no browser download): a real n8n
 * with this package installed; search "WeChat" in the nodes panel, add the trigger and the QR node, open the
 * credential form. Asserts what renders and that the browser console stays free of errors, and saves
 * screenshots: to test-results/screenshots, or with UPDATE_SCREENSHOTS=1 over the ones the README shows (JPEG:
 * `n8n-node build` copies every PNG of the repo into dist/).
 */
import fs from 'node:fs';
import path from 'node:path';

import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as rt from '../../scripts/n8n-runtime.mjs';
import type { Instance } from '../../scripts/n8n-runtime.mjs';
import { DEMO_LOGIN } from '../../scripts/start.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The README's screenshots are replaced only on request (UPDATE_SCREENSHOTS=1); otherwise they go to
// test-results/, so a test run leaves the work tree as it was.
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(rt.REPO_ROOT, 'docs', 'screenshots') : path.join(rt.REPO_ROOT, 'test-results', 'screenshots');

let instance: Instance;
let userFolder: string;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

async function shoot(name: string): Promise<void> {
	await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.jpg`), type: 'jpeg', quality: 85 });
}

beforeAll(async () => {
	if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
	fs.mkdirSync(SCREENSHOTS, { recursive: true });
	const runtime = await rt.ensureRuntime();
	userFolder = rt.tmpUserFolder('n8n-wechat-editor-');
	// A snapshot of dist/, so a rebuild elsewhere cannot change the package under the running n8n.
	instance = await rt.createInstance(runtime, { userFolder, port: await rt.getFreePort(), encryptionKey: ['editor', 'e2e', 'key', '0001'].join('-'), snapshot: true });
	await rt.startN8n(instance, { logFile: path.join(userFolder, 'n8n.log') });
	await rt.setupOwner(instance, DEMO_LOGIN);

	browser = await chromium.launch({
		executablePath: CHROMIUM,
		// Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
	// The first load compiles and serves the whole editor bundle: slow on a busy 2-core machine.
	page.setDefaultNavigationTimeout(180_000);
	page.setDefaultTimeout(60_000);
	await page.goto(`${instance.baseUrl}/signin`);
	await page.locator('input[name="emailOrLdapLoginId"]').fill(DEMO_LOGIN.email);
	await page.locator('input[name="password"]').fill(DEMO_LOGIN.password);
	await page.keyboard.press('Enter');
	await page.waitForURL((url) => !url.pathname.startsWith('/signin'), { timeout: 60_000 });
	// From here on every console error counts (the sign-in page's own 401 probe happens before login).
	page.on('console', (message) => {
		if (message.type() !== 'error') return;
		// The editor looks up community packages on the public npm registry, which this closed network
		// refuses; a resource that failed on another host than this n8n says nothing about the nodes.
		const { url } = message.location();
		if (message.text().startsWith('Failed to load resource') && url && new URL(url).hostname !== '127.0.0.1') return;
		consoleErrors.push(`${message.text()} (${url})`);
	});
	page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
	await page.goto(`${instance.baseUrl}/workflow/new`);
	await page.locator('[data-test-id="node-view-loader"]').waitFor({ state: 'detached', timeout: 120_000 });
}, 600_000);

afterAll(async () => {
	await browser?.close();
	await rt.stopN8n(instance);
	await rt.stopAllTracked();
	if (userFolder) fs.rmSync(userFolder, { recursive: true, force: true });
});

/** Waits until the element is shown; fails the test with Playwright's message after 30 s. */
async function visible(locator: Locator): Promise<void> {
	await locator.waitFor({ state: 'visible', timeout: 30_000 });
}

async function searchNodes(text: string): Promise<void> {
	// An empty canvas offers "add first step"; once a node exists the creator opens from the toolbar's plus.
	await page.locator('[data-test-id="canvas-plus-button"], [data-test-id="canvas-add-button"], [data-test-id="node-creator-plus-button"]').first().click();
	const search = page.locator('[data-test-id="node-creator-search-bar"] input, input[data-test-id="node-creator-search-bar"]').first();
	await search.waitFor({ timeout: 30_000 });
	await search.fill(text);
}

async function closeNodeDetails(): Promise<void> {
	await page.keyboard.press('Escape');
	await page.locator('[data-test-id="ndv"]').waitFor({ state: 'hidden', timeout: 30_000 }).catch(() => undefined);
}

describe('the n8n editor', () => {
	it('finds both nodes when searching "WeChat" in the nodes panel', async () => {
		await searchNodes('WeChat');
		const names = page.locator('[data-test-id="node-creator-item-name"]');
		await expect.poll(async () => names.allInnerTexts(), { timeout: 30_000 }).toEqual(expect.arrayContaining(['WeChat QR Code', 'WeChat Scan']));
		await shoot('nodes-panel');
	});

	it('adds the WeChat Scan Trigger, offering its four events, and shows its parameters', async () => {
		await page.locator('[data-test-id="node-creator-item-name"]', { hasText: 'WeChat Scan' }).first().click();
		for (const event of ['On follow via qr code new follower', 'On scan by follower', 'On plain follow', 'On unfollow']) {
			await visible(page.getByText(event, { exact: true }).first());
		}
		await page.getByText('On scan by follower', { exact: true }).first().click();
		const ndv = page.locator('[data-test-id="ndv"]');
		await ndv.waitFor({ timeout: 60_000 });
		for (const label of ['Webhook URLs', 'Events', 'Scene Filter', 'Options']) await visible(ndv.getByText(label, { exact: true }).first());
		await visible(ndv.getByText('Scan by Follower', { exact: true }).first());
		await visible(ndv.getByText('Paste the Production URL', { exact: false }).first());
		await shoot('scan-trigger');
	});

	it('opens the credential form with every field of the credential', async () => {
		const ndv = page.locator('[data-test-id="ndv"]');
		await ndv.getByText('Connect to WeChat Official Account', { exact: true }).first().click();
		const modal = page.locator('[data-test-id="editCredential-modal"]');
		await modal.waitFor({ timeout: 60_000 });
		for (const label of ['AppID', 'AppSecret', 'Token', 'EncodingAESKey', 'Previous EncodingAESKey', 'API Base URL', 'QR Image Base URL']) {
			// A required field's label carries a trailing asterisk.
			await visible(modal.getByText(new RegExp(`^${label}\\s*\\*?$`)).first());
		}
		await shoot('credential');
		await page.keyboard.press('Escape');
		await modal.waitFor({ state: 'hidden', timeout: 30_000 });
		await closeNodeDetails();
	});

	it('adds the WeChat QR Code node and lists its operations', async () => {
		await searchNodes('WeChat QR');
		await page.locator('[data-test-id="node-creator-item-name"]', { hasText: 'WeChat QR Code' }).first().click();
		const actions = page.locator('[data-test-id="node-creator-item-name"]');
		await expect
			.poll(async () => actions.allInnerTexts(), { timeout: 30_000 })
			.toEqual(expect.arrayContaining(['Create a QR ticket', 'Get a QR image', 'Create a short key', 'Resolve a short key', 'Shorten a URL']));
		await shoot('qr-operations');
		await actions.filter({ hasText: 'Create a QR ticket' }).first().click();
		const ndv = page.locator('[data-test-id="ndv"]');
		await ndv.waitFor({ timeout: 60_000 });
		for (const label of ['QR Type', 'Scene Type', 'Scene String', 'Expire Seconds']) await visible(ndv.getByText(label, { exact: true }).first());
		await shoot('create-ticket');
		await closeNodeDetails();
	});

	it('logged no error in the browser console', () => {
		expect(consoleErrors).toEqual([]);
	});
});
