// The gallery seen through a real browser, against the real `catdog serve`.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium } from './browser.mjs';
import { CatdogServer, copyDevPhotos, RESULTS_DIR } from './catdog-server.mjs';

const PAGE_SIZE = 24; // src/lib/gallery/feed.svelte.ts
const DESKTOP = { width: 1280, height: 800 };
/** What the folder source holds at start: more cats than one page, and a few of neither. */
const INITIAL_PHOTOS = { cat: 32, dog: 32, other: 3 };
/** Photos that arrive later, picked after the initial ones. */
const later = (cat, dog, offset = 0) => [
	{ cat, dog },
	{ cat: INITIAL_PHOTOS.cat + offset, dog: INITIAL_PHOTOS.dog + offset }
];
const PHONE = { width: 390, height: 844 };
const AXE_SOURCE = await readFile(
	createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
	'utf8'
);

/** Console errors and uncaught exceptions seen while the server was up. */
const consoleErrors = [];
let expectNetworkErrors = false;

let browser;
before(async () => {
	await mkdir(RESULTS_DIR, { recursive: true });
	browser = await launchChromium();
});
after(async () => {
	await browser?.close();
});

async function openPage(url, viewport = DESKTOP) {
	const page = await browser.context.newPage();
	await page.setViewportSize(viewport);
	await page.emulateMedia({ reducedMotion: 'reduce' });
	page.on('console', (message) => {
		if (message.type() === 'error' && !expectNetworkErrors) {
			consoleErrors.push(`${message.text()} (${message.location().url})`);
		}
	});
	page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
	await page.goto(url);
	return page;
}

async function eventually(check, { timeout = 30_000, interval = 250, message = 'condition' } = {}) {
	const deadline = Date.now() + timeout;
	let last;
	while (Date.now() < deadline) {
		try {
			const value = await check();
			if (value) return value;
		} catch (error) {
			last = error;
		}
		await new Promise((resolve) => setTimeout(resolve, interval));
	}
	throw new Error(`timed out waiting for ${message}${last ? `: ${last.message}` : ''}`);
}

const tiles = (page, column) => page.locator(`[data-testid="column-${column}"] [data-image-id]`);
const tileIds = (page, column) =>
	tiles(page, column).evaluateAll((links) => links.map((link) => link.dataset.imageId));

/** Waits until the thumbnails in view have arrived, so screenshots show pictures. */
async function thumbnailsInView(page) {
	await page.waitForFunction(() =>
		[...document.querySelectorAll('img.thumb')]
			.filter((img) => img.getBoundingClientRect().top < window.innerHeight)
			.every((img) => img.complete && img.naturalWidth > 0)
	);
}

async function seriousAxeViolations(page) {
	// evaluate() runs outside the page's CSP, which (rightly) forbids injected scripts.
	await page.evaluate(AXE_SOURCE);
	const results = await page.evaluate(() =>
		// @ts-expect-error axe is the global the script above defines
		window.axe.run(document, { resultTypes: ['violations'] })
	);
	return results.violations
		.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
		.map((violation) => `${violation.id} (${violation.impact}): ${violation.nodes.length} nodes`);
}

describe('an empty collection', () => {
	let server;
	before(async () => {
		const emptyFolder = await mkdtemp(path.join(tmpdir(), 'catdog-e2e-empty-src-'));
		server = new CatdogServer({ name: 'empty', sourcesDir: emptyFolder });
		await server.start();
	});
	after(async () => server?.stop());

	it('shows a friendly empty state that says ingestion is running, and the countdown', async () => {
		const page = await openPage(server.baseUrl);
		const empty = page.getByTestId('empty-state');
		await empty.waitFor();
		assert.match(await empty.innerText(), /ingestion is running/i);
		await eventually(
			async () =>
				/Next request in \d+ seconds?/.test(await page.getByTestId('countdown').innerText()),
			{
				message: 'the countdown'
			}
		);
		assert.equal(await page.getByTestId('connection-banner').count(), 0);
		await page.close();
	});
});

describe('the gallery', () => {
	let server;
	let sources;

	before(async () => {
		sources = await mkdtemp(path.join(tmpdir(), 'catdog-e2e-src-'));
		await copyDevPhotos(sources, INITIAL_PHOTOS);
		server = new CatdogServer({
			name: 'main',
			sourcesDir: sources,
			env: { INGEST_BATCH_SIZE: '10' }
		});
		await server.start();
	});
	after(async () => server?.stop());

	it('brings in new pictures by itself, without reloading the page', async () => {
		const page = await openPage(server.baseUrl);
		await page.locator('[data-image-id]').first().waitFor({ timeout: 60_000 });
		await page.evaluate(() => {
			window.__sameDocument = true;
			// Every text the header's status shows, to check the countdown and the spinner.
			window.__statusTexts = [];
			const status = document.querySelector('[data-testid="countdown"]');
			const record = () => window.__statusTexts.push(status?.textContent?.trim() ?? '');
			new MutationObserver(record).observe(status, {
				subtree: true,
				childList: true,
				characterData: true
			});
		});
		const firstOfEach = async () => [
			...(await tileIds(page, 'cat')).slice(0, 1),
			...(await tileIds(page, 'dog')).slice(0, 1)
		];
		const shownBefore = new Set(
			await page
				.locator('[data-image-id]')
				.evaluateAll((links) => links.map((link) => link.dataset.imageId))
		);
		const topBefore = await firstOfEach();

		// Whatever the ingestion has already taken, these two are new to it.
		await copyDevPhotos(sources, ...later(1, 1));
		await eventually(
			async () => {
				const top = await firstOfEach();
				return top.some((id, index) => id !== topBefore[index] && !shownBefore.has(id));
			},
			{ timeout: 90_000, message: 'a new picture at the top of a column' }
		);
		assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page reloaded');
		assert.match(await page.getByTestId('total').innerText(), /\d+ pictures?/);
		const texts = await page.evaluate(() => window.__statusTexts);
		assert.ok(
			texts.some((text) => /Fetching new pictures/.test(text)),
			'the spinner showed'
		);
		const seconds = texts
			.map((text) => /Next request in (\d+) seconds?/.exec(text)?.[1])
			.filter(Boolean)
			.map(Number);
		assert.ok(
			seconds.some((value, index) => index > 0 && value < seconds[index - 1]),
			`the countdown counted down: ${seconds}`
		);
		await page.close();
	});

	it('shows cats only under Cats and dogs only under Dogs', async () => {
		await eventually(
			async () => (await server.getJson('/api/v1/stats')).by_category.cat > PAGE_SIZE,
			{
				timeout: 180_000,
				message: `more than ${PAGE_SIZE} cats to be classified`
			}
		);
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().waitFor();
		await tiles(page, 'dog').first().waitFor();

		for (const [column, name] of [
			['cat', 'Cat'],
			['dog', 'Dog']
		]) {
			const shown = await tiles(page, column).evaluateAll((links) =>
				links.map((link) => ({
					category: link.dataset.category,
					alt: link.querySelector('img.thumb')?.getAttribute('alt') ?? ''
				}))
			);
			assert.ok(shown.length > 0);
			for (const tile of shown) {
				assert.equal(tile.category, column);
				assert.match(tile.alt, new RegExp(`^${name}, \\d+% sure, added `));
			}
			// And they are the pictures the API files under that category.
			const api = await server.getJson(`/api/v1/images?category=${column}&limit=100`);
			const known = new Set(api.items.map((item) => item.id));
			for (const id of await tileIds(page, column))
				assert.ok(known.has(id), `${id} is not a ${column}`);
		}

		await page.close();
	});

	it('loads the next page while scrolling a column, down to a clear end', async () => {
		const page = await openPage(server.baseUrl);
		const cats = tiles(page, 'cat');
		await cats.first().waitFor();
		assert.equal(await cats.count(), PAGE_SIZE, 'the first page is one page long');

		const end = page.getByTestId('column-cat').getByText(/That's all \d+ cats/);
		await eventually(
			async () => {
				await cats.last().scrollIntoViewIfNeeded();
				return end.isVisible();
			},
			{ timeout: 30_000, message: 'the end of the cats' }
		);
		const ids = await tileIds(page, 'cat');
		assert.ok(ids.length > PAGE_SIZE, 'scrolling loaded a second page');
		assert.equal(new Set(ids).size, ids.length, 'no picture appears twice');
		const { by_category } = await server.getJson('/api/v1/stats');
		assert.ok(ids.length >= by_category.cat - 2, `shows ${ids.length} of ${by_category.cat} cats`);
		assert.match(await end.innerText(), new RegExp(`That's all ${ids.length} cats`));
		await page.close();
	});

	it('keeps what the visitor is looking at still while new pictures arrive', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').nth(12).waitFor();
		const catsBefore = await tileIds(page, 'cat');
		await page.mouse.wheel(0, 450);
		await page.waitForFunction(() => window.scrollY >= 400);
		const positions = () =>
			page.evaluate(() =>
				[...document.querySelectorAll('[data-image-id]')].map((tile) => {
					const rect = tile.getBoundingClientRect();
					return `${tile.dataset.imageId}@${Math.round(rect.left)},${Math.round(rect.top)}`;
				})
			);
		const before = await positions();

		// Four photos the server has not seen yet arrive in its source folder.
		await copyDevPhotos(sources, ...later(2, 2, 1));
		const notice = page.getByRole('button', { name: /new pictures?/ });
		await notice.waitFor({ timeout: 90_000 });
		// Older pages may have been added below; nothing already shown may move.
		const now = new Set(await positions());
		const moved = before.filter((position) => !now.has(position));
		assert.deepEqual(moved, [], 'pictures moved under the visitor');

		await notice.click();
		await page.waitForFunction(() => window.scrollY === 0);
		await notice.waitFor({ state: 'detached' });
		const catsAfter = await tileIds(page, 'cat');
		const added = catsAfter.indexOf(catsBefore[0]);
		assert.ok(added > 0, 'new pictures are shown on top');
		assert.deepEqual(
			catsAfter.slice(added, added + catsBefore.length),
			catsBefore,
			'the others follow in order'
		);
		await page.close();
	});

	it('opens a picture with Enter, moves with the arrow keys and closes with Esc', async () => {
		const page = await openPage(server.baseUrl);
		const cats = tiles(page, 'cat');
		await cats.nth(2).waitFor();
		const [first, second] = await tileIds(page, 'cat');

		await cats.first().focus();
		await page.keyboard.press('Enter');
		const viewer = page.getByTestId('viewer');
		await viewer.waitFor();
		assert.equal(new URL(page.url()).searchParams.get('image'), first);
		const details = await viewer.innerText();
		assert.match(details, /Cat/);
		assert.match(details, /\d+% sure/);
		assert.match(details, /Added/);
		assert.match(details, /From/);
		const item = await server.getJson(`/api/v1/images/${first}`);
		assert.equal(
			await viewer.getByRole('link', { name: /open original/i }).getAttribute('href'),
			item.url
		);

		await page.keyboard.press('ArrowRight');
		await page.waitForURL((url) => url.searchParams.get('image') === second);
		await page.keyboard.press('ArrowLeft');
		await page.waitForURL((url) => url.searchParams.get('image') === first);

		// Focus stays inside the viewer however far the visitor tabs.
		for (let step = 0; step < 8; step++) {
			await page.keyboard.press('Tab');
			assert.ok(
				await page.evaluate(() => !!document.activeElement?.closest('dialog')),
				'focus left the viewer'
			);
		}

		await page.keyboard.press('Escape');
		await viewer.waitFor({ state: 'detached' });
		assert.equal(new URL(page.url()).searchParams.get('image'), null);
		assert.equal(
			await page.evaluate(() => document.activeElement?.getAttribute('data-image-id')),
			first
		);
		await page.close();
	});

	it('opens the picture a shared link names', async () => {
		const { items } = await server.getJson('/api/v1/images?category=dog&limit=3');
		const dog = items[2];
		const page = await openPage(`${server.baseUrl}/?image=${dog.id}`);
		const viewer = page.getByTestId('viewer');
		await viewer.waitFor();
		assert.match(await viewer.innerText(), /Dog/);
		assert.equal(await viewer.locator('img.full').getAttribute('src'), dog.url);
		await page.keyboard.press('Escape');
		await viewer.waitFor({ state: 'detached' });
		await page.close();
	});

	it('uses tabs on a phone: All, Cats and Dogs', async () => {
		const page = await openPage(server.baseUrl, PHONE);
		await tiles(page, 'all').first().waitFor();
		const tabs = page.getByRole('tab');
		assert.deepEqual(
			(await tabs.allInnerTexts()).map((text) => text.replace(/[^A-Za-z]/g, '')),
			['All', 'Cats', 'Dogs']
		);
		await tiles(page, 'all').first().waitFor();
		const allCategories = await tiles(page, 'all').evaluateAll((links) =>
			links.map((link) => link.dataset.category)
		);
		assert.ok(allCategories.includes('cat') && allCategories.includes('dog'), 'All shows both');

		await page.getByRole('tab', { name: /Cats/ }).click();
		await tiles(page, 'cat').first().waitFor();
		const catCategories = await tiles(page, 'cat').evaluateAll((links) =>
			links.map((link) => link.dataset.category)
		);
		assert.ok(catCategories.every((category) => category === 'cat'));

		await page.getByRole('tab', { name: /Dogs/ }).click();
		await tiles(page, 'dog').first().waitFor();
		const dogCategories = await tiles(page, 'dog').evaluateAll((links) =>
			links.map((link) => link.dataset.category)
		);
		assert.ok(dogCategories.every((category) => category === 'dog'));

		await page.getByRole('tab', { name: /All/ }).click();
		await tiles(page, 'all').first().waitFor();
		await thumbnailsInView(page);
		await page.screenshot({ path: path.join(RESULTS_DIR, 'phone.png') });
		await page.close();
	});

	it('has no serious or critical accessibility violations (axe-core)', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().waitFor();
		await thumbnailsInView(page);
		await page.screenshot({ path: path.join(RESULTS_DIR, 'desktop.png') });
		assert.deepEqual(await seriousAxeViolations(page), [], 'desktop gallery');

		await tiles(page, 'dog').first().click();
		await page.getByTestId('viewer').waitFor();
		assert.deepEqual(await seriousAxeViolations(page), [], 'viewer');
		await page.close();

		const phone = await openPage(server.baseUrl, PHONE);
		await tiles(phone, 'all').first().waitFor();
		assert.deepEqual(await seriousAxeViolations(phone), [], 'phone gallery');
		await phone.close();
	});

	it('shows a banner while the server is down and clears it when it is back', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().waitFor();
		const shownBefore = await page.locator('[data-image-id]').count();
		const banner = page.getByTestId('connection-banner');

		expectNetworkErrors = true;
		try {
			await server.stop();
			await banner.waitFor({ timeout: 30_000 });
			assert.match(await banner.innerText(), /can't reach/i);
			assert.equal(await page.locator('[data-image-id]').count(), shownBefore, 'kept the pictures');

			await server.start();
			await banner.waitFor({ state: 'detached', timeout: 30_000 });
		} finally {
			expectNetworkErrors = false;
		}
		assert.ok((await page.locator('[data-image-id]').count()) >= shownBefore);
		await page.close();
	});
});

// Last, so it covers every page above (except while the server was stopped on purpose).
it('logged no errors in the browser console', () => {
	assert.deepEqual(consoleErrors, []);
});
