// Launches Debian's Chromium through playwright-core: no browser download, a
// fresh profile every time, and nothing that talks to the outside world.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

export async function launchChromium() {
	const profile = await mkdtemp(path.join(tmpdir(), 'catdog-chromium-'));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM_BIN,
		headless: true,
		viewport: { width: 1280, height: 800 },
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync'
		]
	});
	return {
		context,
		async close() {
			await context.close();
			await rm(profile, { recursive: true, force: true });
		}
	};
}
