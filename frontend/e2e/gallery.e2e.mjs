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
/** What the folder source holds at start: more than 50 cats (two page boundaries), and a few of neither. */
const INITIAL_PHOTOS = { cat: 52, dog: 32, other: 3 };
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

/** A new tab at `url`; `beforeLoad(page)` runs first (e.g. to add an init script). */
async function openPage(url, viewport = DESKTOP, { beforeLoad } = {}) {
	const page = await browser.context.newPage();
	await page.setViewportSize(viewport);
	await page.emulateMedia({ reducedMotion: 'reduce' });
	page.on('console', (message) => {
		if (message.type() === 'error' && !expectNetworkErrors) {
			consoleErrors.push(`${message.text()} (${message.location().url})`);
		}
	});
	page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
	if (beforeLoad) await beforeLoad(page);
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

async function axeViolations(page) {
	// evaluate() runs outside the page's CSP, which (rightly) forbids injected scripts.
	await page.evaluate(AXE_SOURCE);
	const results = await page.evaluate(() =>
		// @ts-expect-error axe is the global the script above defines
		window.axe.run(document, { resultTypes: ['violations'] })
	);
	return results.violations.map(
		(violation) =>
			`${violation.id} (${violation.impact}): ${violation.nodes.length} nodes, e.g. ${violation.nodes[0]?.target}`
	);
}

/** Runs axe in the light and the dark colour scheme; returns what either found. */
async function axeInBothSchemes(page, state) {
	const found = [];
	for (const colorScheme of ['light', 'dark']) {
		await page.emulateMedia({ colorScheme, reducedMotion: 'reduce' });
		for (const violation of await axeViolations(page))
			found.push(`${state}, ${colorScheme}: ${violation}`);
	}
	await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
	return found;
}

/** The id of the tile under a point of the page, or null. */
const tileAt = (page, x, y) =>
	page.evaluate(
		([px, py]) =>
			document.elementFromPoint(px, py)?.closest('[data-image-id]')?.dataset.imageId ?? null,
		[x, y]
	);

/** The open picture's drawn width, its zoom and the page's own pinch-zoom scale. */
const viewerScale = (page) =>
	page.evaluate(() => {
		const canvas = document.querySelector('[data-testid="viewer-canvas"]');
		return {
			width: canvas?.getBoundingClientRect().width ?? 0,
			zoom: Number(canvas?.dataset.zoom ?? 0),
			pageScale: window.visualViewport?.scale ?? 1
		};
	});

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
			async () => /checking again in \d+ s/i.test(await page.getByTestId('countdown').innerText()),
			{
				message: 'the countdown'
			}
		);
		assert.equal(await page.getByTestId('connection-banner').count(), 0);
		await page.close();
	});
});

describe('every picture source failing', () => {
	let server;
	before(async () => {
		const nowhere = path.join(await mkdtemp(path.join(tmpdir(), 'catdog-e2e-gone-')), 'missing');
		server = new CatdogServer({ name: 'failing', sourcesDir: nowhere });
		await server.start();
	});
	after(async () => server?.stop());

	it('says which sources failed and why, and how to run offline', async () => {
		await eventually(
			async () =>
				(await server.getJson('/api/v1/stats')).sources.every((source) => source.last_error),
			{ message: 'the source to fail once' }
		);
		const page = await openPage(server.baseUrl);
		const empty = page.getByTestId('empty-state');
		await empty.waitFor();
		const failing = page.getByTestId('failing-sources');
		await failing.waitFor();
		const { sources } = await server.getJson('/api/v1/stats');
		assert.match(await failing.innerText(), new RegExp(`${sources[0].name}: \\S`));
		assert.match(await empty.innerText(), /INGEST_SOURCES=folder:PATH scripts\/serve\.sh/);
		assert.doesNotMatch(await empty.innerText(), /ingestion is running/i);
		assert.deepEqual(await axeInBothSchemes(page, 'failing sources'), []);
		await page.close();
	});

	it('has a 404 page that says so and links home, without scripts', async () => {
		const response = await fetch(`${server.baseUrl}/404.html`);
		assert.equal(response.ok, true);
		const html = await response.text();
		assert.match(html, /This page does not exist/);
		assert.match(html, /<a [^>]*href="\/"[^>]*>Go to the gallery<\/a>/);
		assert.doesNotMatch(html, /<script/);
		assert.doesNotMatch(html, /="\.\//, 'links work from any depth');
	});

	it('answers an address it does not have with 404 and the 404 page', async () => {
		for (const address of ['/nonexistent', '/cats/12/photo.jpg']) {
			const response = await fetch(`${server.baseUrl}${address}`);
			assert.equal(response.status, 404, `${address} is not found`);
			assert.match(await response.text(), /This page does not exist/);
		}

		const page = await openPage('about:blank');
		// The browser logs the 404 of the address itself, and that is expected.
		expectNetworkErrors = true;
		const response = await page.goto(`${server.baseUrl}/cats/12/photo.jpg`);
		expectNetworkErrors = false;
		assert.equal(response?.status(), 404);
		await page.getByRole('heading', { name: 'This page does not exist' }).waitFor();
		assert.equal(await page.title(), 'Page not found · CatDog Gallery');
		// Styled from any depth: its stylesheet's links start at the root.
		const background = await page
			.getByRole('link', { name: 'Go to the gallery' })
			.evaluate((link) => getComputedStyle(link).backgroundColor);
		assert.notEqual(background, 'rgba(0, 0, 0, 0)', 'the link is drawn as a button');
		assert.deepEqual(await axeInBothSchemes(page, '404 page'), []);
		await page.getByRole('link', { name: 'Go to the gallery' }).click();
		await page.waitForURL(`${server.baseUrl}/`);
		await page.getByTestId('empty-state').waitFor();
		await page.close();
	});
});

describe('the gallery', () => {
	let server;
	let sources;
	/** How many photos are in the source folder so far. */
	let copied = 0;

	/** Waits until the server has taken in and classified every photo copied so far. */
	async function allTakenIn() {
		await eventually(
			async () => {
				const { by_status } = await server.getJson('/api/v1/stats');
				const known = Object.values(by_status).reduce((sum, count) => sum + count, 0);
				return known >= copied && by_status.pending === 0;
			},
			{ timeout: 120_000, message: `all ${copied} photos classified` }
		);
	}

	before(async () => {
		sources = await mkdtemp(path.join(tmpdir(), 'catdog-e2e-src-'));
		copied += (await copyDevPhotos(sources, INITIAL_PHOTOS)).length;
		server = new CatdogServer({
			name: 'main',
			sourcesDir: sources,
			// The folder source takes at most INGEST_BATCH_SIZE files a run (oldest
			// first); 100, the most allowed, takes the whole starting folder at once.
			env: { INGEST_BATCH_SIZE: '100' }
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
		copied += (await copyDevPhotos(sources, ...later(1, 1))).length;
		await eventually(
			async () => {
				const top = await firstOfEach();
				return top.some((id, index) => id !== topBefore[index] && !shownBefore.has(id));
			},
			{ timeout: 90_000, message: 'a new picture at the top of a column' }
		);
		assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page reloaded');
		assert.match(await page.getByTestId('total').innerText(), /\d+ pictures? of cats and dogs/);
		const texts = await page.evaluate(() => window.__statusTexts);
		assert.ok(
			texts.some((text) => /Checking for new pictures/.test(text)),
			'the spinner showed'
		);
		assert.ok(
			texts.some((text) => /^Updated (just now|\d+ s ago) · checking again in \d+ s$/.test(text)),
			`the header says when it last looked and when it looks again: ${texts.slice(-3)}`
		);
		const seconds = texts
			.map((text) => /checking again in (\d+) s/.exec(text)?.[1])
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
				assert.match(tile.alt, new RegExp(`^${name}, \\d+% sure, (.+, )?added `));
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
		copied += (await copyDevPhotos(sources, ...later(2, 2, 1))).length;
		const notice = page.getByRole('button', { name: /new pictures?/ });
		await notice.waitFor({ timeout: 90_000 });
		// Older pages may have been added below; nothing already shown may move.
		const now = new Set(await positions());
		const moved = before.filter((position) => !now.has(position));
		assert.deepEqual(moved, [], 'pictures moved under the visitor');

		await notice.click();
		await page.waitForFunction(() => window.scrollY === 0);
		await notice.waitFor({ state: 'detached' });
		// The first news may have been dogs only; with focus now on the newest
		// picture, later ones wait behind the button again.
		await eventually(
			async () => {
				if (await notice.isVisible()) await notice.click();
				return (await tileIds(page, 'cat')).indexOf(catsBefore[0]) > 0;
			},
			{ timeout: 90_000, message: 'new cats shown on top' }
		);
		const catsAfter = await tileIds(page, 'cat');
		const added = catsAfter.indexOf(catsBefore[0]);
		assert.deepEqual(
			catsAfter.slice(added, added + catsBefore.length),
			catsBefore,
			'the others follow in order'
		);
		await page.close();
	});

	it('keeps the tile under a still pointer while new pictures arrive at the top', async () => {
		await allTakenIn();
		const page = await openPage(server.baseUrl);
		const cats = tiles(page, 'cat');
		await cats.nth(4).waitFor();
		assert.equal(await page.evaluate(() => window.scrollY), 0);
		await page.waitForTimeout(500);
		assert.equal(
			(await page.getByTestId('announcer').innerText()).trim(),
			'',
			'the first load is not announced as new pictures'
		);
		const box = await cats.first().boundingBox();
		const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
		await page.mouse.move(x, y);
		const under = await tileAt(page, x, y);
		assert.ok(under, 'the pointer is over a tile');

		// Eight photos the server has not seen yet: four cats and four dogs.
		copied += (await copyDevPhotos(sources, ...later(4, 4, 3))).length;
		const notice = page.getByRole('button', { name: /new pictures?/ });
		await notice.waitFor({ timeout: 90_000 });
		assert.equal(await tileAt(page, x, y), under, 'the picture under the pointer changed');
		assert.equal((await tileIds(page, 'cat'))[0], under, 'nothing was put above it');

		// Once the pointer leaves the pictures, they come in by themselves.
		await page.mouse.move(5, 5);
		await notice.waitFor({ state: 'detached', timeout: 10_000 });
		await eventually(async () => (await tileIds(page, 'cat')).indexOf(under) > 0, {
			timeout: 90_000,
			message: 'the new cats on top'
		});
		await page.close();
	});

	it('keeps the tile in keyboard focus while new pictures arrive at the top', async () => {
		await allTakenIn();
		const page = await openPage(server.baseUrl);
		const dogs = tiles(page, 'dog');
		await dogs.nth(2).waitFor();
		const focused = (await tileIds(page, 'dog'))[0];
		await dogs.first().focus();
		const before = await dogs.first().boundingBox();
		copied += (await copyDevPhotos(sources, ...later(0, 2, 7))).length;
		const notice = page.getByRole('button', { name: /new pictures?/ });
		await notice.waitFor({ timeout: 90_000 });
		assert.equal((await tileIds(page, 'dog'))[0], focused);
		assert.deepEqual(await dogs.first().boundingBox(), before, 'the focused tile moved');
		// The notice's click shows them and puts focus on the newest, not on <body>.
		await notice.click();
		await notice.waitFor({ state: 'detached' });
		const active = await page.evaluate(() => document.activeElement?.dataset.imageId ?? null);
		const tops = [(await tileIds(page, 'cat'))[0], (await tileIds(page, 'dog'))[0]];
		assert.ok(tops.includes(active), `focus is on the newest picture of a column, not ${active}`);
		assert.notEqual(active, focused);
		await page.close();
	});

	it('opens a picture with Enter, moves with the arrow keys and closes with Esc', async () => {
		await allTakenIn();
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
		assert.match(details, /\bcat\b/i);
		assert.match(details, /\d+% sure/);
		assert.match(details, /Added/);
		assert.match(details, /From/);
		const item = await server.getJson(`/api/v1/images/${first}`);
		assert.equal(
			await viewer.getByRole('link', { name: /open original/i }).getAttribute('href'),
			item.url
		);

		assert.equal(
			await page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
			'Close viewer',
			'focus starts on Close'
		);

		await page.keyboard.press('ArrowRight');
		await page.waitForURL((url) => url.searchParams.get('image') === second);
		await page.keyboard.press('ArrowLeft');
		await page.waitForURL((url) => url.searchParams.get('image') === first);
		await page.keyboard.press('PageDown');
		await page.waitForURL((url) => url.searchParams.get('image') === second);
		await page.keyboard.press('PageUp');
		await page.waitForURL((url) => url.searchParams.get('image') === first);
		const loaded = await tileIds(page, 'cat');
		await page.keyboard.press('End');
		await page.waitForURL((url) => url.searchParams.get('image') === loaded.at(-1));
		await page.keyboard.press('Home');
		await page.waitForURL((url) => url.searchParams.get('image') === first);
		// The count is the category's (the server's count) unless the whole list is loaded.
		const { by_category } = await server.getJson('/api/v1/stats');
		const total = new RegExp(`\\b1 of (${by_category.cat}|${loaded.length})\\b`);
		assert.match(await viewer.innerText(), total);

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
		assert.match(await viewer.innerText(), /\bdog\b/i);
		assert.equal(await viewer.locator('img.full').getAttribute('src'), dog.url);
		await page.keyboard.press('Escape');
		await viewer.waitFor({ state: 'detached' });
		await page.close();
	});

	it('opens a shared link beyond the first page with working arrows, and closes to a reloadable address', async () => {
		const { items } = await server.getJson(`/api/v1/images?category=cat&limit=${PAGE_SIZE + 4}`);
		const deep = items[PAGE_SIZE + 2];
		assert.ok(deep, 'more than one page of cats');
		const page = await openPage(`${server.baseUrl}/?image=${deep.id}`);
		const viewer = page.getByTestId('viewer');
		await viewer.waitFor();
		await eventually(async () => /\d+ of \d+/.test(await viewer.innerText()), {
			message: 'the picture found in its list'
		});
		assert.match(await viewer.innerText(), new RegExp(`${PAGE_SIZE + 3} of \\d+`));
		assert.equal(await viewer.getByRole('button', { name: 'Previous picture' }).isEnabled(), true);
		await page.keyboard.press('ArrowLeft');
		await page.waitForURL((url) => url.searchParams.get('image') === items[PAGE_SIZE + 1].id);
		await page.keyboard.press('Escape');
		await viewer.waitFor({ state: 'detached' });
		const closed = new URL(page.url());
		assert.equal(closed.pathname, '/');
		assert.equal(closed.search, '');
		await page.reload();
		await tiles(page, 'cat').first().waitFor();
		await page.close();
	});

	it('opens a deep link to the 50th cat at its place, after a reload too, with both arrows crossing page boundaries', async () => {
		await allTakenIn();
		const { items, total } = await server.getJson('/api/v1/images?category=cat&limit=100');
		assert.ok(items.length >= 50, `at least 50 cats (${items.length})`);
		const place = (page) => page.getByTestId('viewer-place');
		const at = async (page, position) => {
			await page.waitForURL((url) => url.searchParams.get('image') === items[position - 1].id);
			await eventually(
				async () => (await place(page).innerText()) === `${position} of ${total} cats`,
				{
					message: `"${position} of ${total} cats"`
				}
			);
		};

		const page = await openPage(`${server.baseUrl}/?image=${items[49].id}`);
		await at(page, 50);
		await page.reload();
		await at(page, 50);
		assert.equal(await page.locator('img.full').getAttribute('src'), items[49].url);
		// The page around the 50th starts 12 newer (24 a page): ← crosses into the newer page.
		for (let position = 49; position >= 36; position--) {
			await page.keyboard.press('ArrowLeft');
			await at(page, position);
		}
		// Reloaded there, the page around the 36th ends before the 50th: → crosses into the older page.
		await page.reload();
		await at(page, 36);
		for (let position = 37; position <= 50; position++) {
			await page.keyboard.press('ArrowRight');
			await at(page, position);
		}
		assert.deepEqual(await axeInBothSchemes(page, 'deep-linked viewer'), []);
		await page.close();
	});

	it('lists the refused pictures with their reason, in a view of their own shown on demand', async () => {
		await allTakenIn();
		const refused = await server.getJson('/api/v1/images?category=other&limit=100');
		assert.ok(refused.items.length > 0, 'some pictures were refused');
		const first = refused.items[0];
		assert.ok(first.reason, 'the API says why');
		const stats = await server.getJson('/api/v1/stats');

		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().waitFor();
		assert.equal(await page.getByTestId('column-other').count(), 0, 'not shown by default');
		// The header's counts are the stats': the gallery's cats and dogs, and the refused.
		const header = await page.getByTestId('total').innerText();
		assert.match(header, new RegExp(`^${stats.total_images} pictures of cats and dogs`));
		assert.match(header, new RegExp(`${refused.total} refused`));
		assert.equal(stats.by_category.other + stats.by_status.rejected, refused.total);

		await page.getByTestId('show-refused').click();
		await page.waitForURL((url) => url.searchParams.get('tab') === 'other');
		const tile = page.locator(`[data-testid="column-other"] [data-image-id="${first.id}"]`);
		await tile.waitFor();
		assert.match(await tile.innerText(), new RegExp(first.reason, 'i'));
		assert.match(
			(await tile.locator('img.thumb').getAttribute('alt')) ?? '',
			new RegExp(`refused: ${first.reason}`)
		);
		assert.deepEqual(await axeInBothSchemes(page, 'refused pictures'), []);

		await tile.click();
		const viewer = page.getByTestId('viewer');
		await viewer.waitFor();
		assert.match(
			await viewer.getByTestId('viewer-why').innerText(),
			new RegExp(`Refused: ${first.reason}`)
		);
		await page.keyboard.press('Escape');
		await viewer.waitFor({ state: 'detached' });
		await page.getByRole('button', { name: /Hide/ }).click();
		await page.getByTestId('column-other').waitFor({ state: 'detached' });
		await page.close();

		// On a phone the address opens them as a tab of their own.
		const phone = await openPage(`${server.baseUrl}/?tab=other`, PHONE);
		const tab = phone.getByRole('tab', { name: /Refused/ });
		await tab.waitFor();
		assert.equal(await tab.getAttribute('aria-selected'), 'true');
		await tiles(phone, 'other').first().waitFor();
		assert.deepEqual(await axeInBothSchemes(phone, 'refused pictures on a phone'), []);
		await phone.close();
	});

	it('says so when a shared link names a picture the gallery does not have', async () => {
		// The server's 404 for the unknown picture is logged by the browser, and expected.
		expectNetworkErrors = true;
		const page = await openPage(`${server.baseUrl}/?image=0192ffff-0000-7000-8000-000000000000`);
		const viewer = page.getByTestId('viewer');
		await viewer.waitFor();
		const missing = viewer.getByTestId('viewer-missing');
		await eventually(async () => /not in the gallery/i.test(await missing.innerText()), {
			message: 'the not-found message'
		});
		assert.deepEqual(await axeInBothSchemes(page, 'missing picture'), []);
		await page.keyboard.press('Escape');
		await viewer.waitFor({ state: 'detached' });
		assert.equal(new URL(page.url()).searchParams.get('image'), null);

		const garbled = await openPage(`${server.baseUrl}/?image=not-an-id`);
		await eventually(
			async () =>
				/not in the gallery/i.test(await garbled.getByTestId('viewer-missing').innerText()),
			{ message: 'the not-found message for a malformed id' }
		);
		await garbled.close();
		await page.close();
		expectNetworkErrors = false;
	});

	it('zooms the picture, not the page: wheel, double-click, pinch and drag', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().click();
		const stage = page.getByTestId('viewer-stage');
		await page.getByTestId('viewer-canvas').waitFor();
		await page.waitForFunction(() => document.querySelector('img.full')?.complete);
		const fitted = await viewerScale(page);
		const natural = await page.evaluate(() => document.querySelector('img.full')?.naturalWidth);
		assert.ok(
			fitted.width <= 2 * natural + 1,
			`a small picture is enlarged at most twice (${fitted.width} for ${natural})`
		);
		const box = await stage.boundingBox();
		const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];

		// The wheel.
		await page.mouse.move(cx, cy);
		await page.mouse.wheel(0, -400);
		await eventually(async () => (await viewerScale(page)).zoom > 1.2, { message: 'wheel zoom' });
		let now = await viewerScale(page);
		assert.ok(now.width > fitted.width * 1.2, 'the picture is drawn larger');
		assert.equal(now.pageScale, 1, 'the page did not zoom');
		// Ctrl + wheel (a trackpad pinch) zooms the picture too, never the page.
		await page.keyboard.down('Control');
		await page.mouse.wheel(0, -100);
		await page.keyboard.up('Control');
		assert.equal((await viewerScale(page)).pageScale, 1);

		// Dragging pans the zoomed picture.
		const before = await page.getByTestId('viewer-canvas').boundingBox();
		await page.mouse.down();
		await page.mouse.move(cx + 80, cy + 40, { steps: 4 });
		await page.mouse.up();
		const after = await page.getByTestId('viewer-canvas').boundingBox();
		assert.ok(Math.abs(after.x - before.x) > 20 || Math.abs(after.y - before.y) > 10, 'drag pans');

		// The next picture starts whole again.
		await page.keyboard.press('ArrowRight');
		await eventually(async () => (await viewerScale(page)).zoom === 1, {
			message: 'zoom reset on step'
		});

		// A double-click toggles a closer look and back.
		await page.mouse.dblclick(cx, cy);
		await eventually(async () => (await viewerScale(page)).zoom > 1.5, {
			message: 'double-click zoom'
		});
		await page.mouse.dblclick(cx, cy);
		await eventually(async () => (await viewerScale(page)).zoom === 1, {
			message: 'double-click back'
		});

		// A two-finger pinch, as a touch screen sends it.
		const cdp = await page.context().newCDPSession(page);
		await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 5 });
		const fingers = (spread) => [
			{ x: cx - spread, y: cy, id: 1 },
			{ x: cx + spread, y: cy, id: 2 }
		];
		await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: fingers(30) });
		for (let spread = 40; spread <= 150; spread += 10) {
			await cdp.send('Input.dispatchTouchEvent', {
				type: 'touchMove',
				touchPoints: fingers(spread)
			});
		}
		await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
		now = await viewerScale(page);
		assert.ok(now.zoom > 1.5, `the pinch zoomed the picture (zoom ${now.zoom})`);
		assert.equal(now.pageScale, 1, 'the pinch did not zoom the page');
		await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: false });
		await cdp.detach();
		await page.close();
	});

	it('uses tabs on a phone: All, Cats and Dogs', async () => {
		await allTakenIn();
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

		assert.equal(new URL(page.url()).searchParams.get('tab'), 'dog', 'the tab is in the address');
		await page.goBack();
		await eventually(
			async () =>
				(await page.getByRole('tab', { name: /Cats/ }).getAttribute('aria-selected')) === 'true',
			{ message: 'back to the Cats tab' }
		);
		assert.equal(new URL(page.url()).searchParams.get('tab'), 'cat');
		await page.reload();
		await tiles(page, 'cat').first().waitFor();
		assert.equal(
			await page.getByRole('tab', { name: /Cats/ }).getAttribute('aria-selected'),
			'true'
		);

		// Each tab keeps its own scroll position; a tab not seen yet starts at the top.
		await page.evaluate(() => window.scrollTo({ top: 900 }));
		await page.waitForFunction(() => window.scrollY >= 800);
		const catScroll = await page.evaluate(() => window.scrollY);
		// A click as a finger makes it: Playwright's click() would first scroll the sticky tab "into view".
		await page.getByRole('tab', { name: /All/ }).dispatchEvent('click');
		await tiles(page, 'all').first().waitFor();
		await page.waitForFunction(() => window.scrollY === 0);
		await page.getByRole('tab', { name: /Cats/ }).dispatchEvent('click');
		await page.waitForFunction((top) => Math.abs(window.scrollY - top) < 2, catScroll);

		// d jumps to the dogs: their tab, focus on the first of them.
		await page.keyboard.press('d');
		await tiles(page, 'dog').first().waitFor();
		assert.equal(new URL(page.url()).searchParams.get('tab'), 'dog');
		assert.equal(
			await page.evaluate(() => document.activeElement?.dataset.imageId),
			(await tileIds(page, 'dog'))[0]
		);

		await page.getByRole('tab', { name: /All/ }).click();
		await tiles(page, 'all').first().waitFor();
		await page.evaluate(() => window.scrollTo({ top: 0 }));
		await thumbnailsInView(page);
		await page.screenshot({ path: path.join(RESULTS_DIR, 'phone.png') });
		await page.close();
	});

	it('jumps to the cats and dogs with c and d, and lists the keys with ?', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'dog').first().waitFor();
		const focusedId = () => page.evaluate(() => document.activeElement?.dataset.imageId ?? null);
		await page.keyboard.press('d');
		assert.equal(await focusedId(), (await tileIds(page, 'dog'))[0]);
		await page.keyboard.press('c');
		assert.equal(await focusedId(), (await tileIds(page, 'cat'))[0]);

		await page.keyboard.press('?');
		const keys = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
		await keys.waitFor();
		assert.match(await keys.innerText(), /Go to the dogs/);
		assert.match(await keys.innerText(), /Page Up/);
		assert.deepEqual(await axeInBothSchemes(page, 'keys dialog'), []);
		await page.keyboard.press('Escape');
		await keys.waitFor({ state: 'detached' });
		assert.equal(await focusedId(), (await tileIds(page, 'cat'))[0], 'focus went back');
		await page.close();
	});

	it('downloads the picture, copies its link and shares it from the viewer', async () => {
		await allTakenIn();
		await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], {
			origin: server.baseUrl
		});
		const page = await openPage(server.baseUrl);
		const dogs = tiles(page, 'dog');
		await dogs.nth(1).waitFor();
		const id = (await tileIds(page, 'dog'))[1];
		const item = await server.getJson(`/api/v1/images/${id}`);
		await dogs.nth(1).click();
		const viewer = page.getByTestId('viewer');
		await viewer.waitFor();

		// Download: the original, saved under a name that says what it is.
		const download = viewer.getByRole('link', { name: 'Download' });
		assert.equal(await download.getAttribute('href'), item.url);
		const [saved] = await Promise.all([page.waitForEvent('download'), download.click()]);
		assert.match(
			saved.suggestedFilename(),
			new RegExp(`^catdog-dog-${id}\\.(jpe?g|png|gif|webp)$`)
		);
		const original = Buffer.from(
			await (await fetch(new URL(item.url, server.baseUrl))).arrayBuffer()
		);
		assert.ok(original.length > 0);
		assert.deepEqual(await readFile(await saved.path()), original, 'the original is what is saved');

		// Copy link: the deep link is on the clipboard, and it opens this picture.
		await viewer.getByRole('button', { name: 'Copy link' }).click();
		await eventually(async () => /Link copied/.test(await viewer.innerText()), {
			message: 'the "Link copied" notice'
		});
		const link = await page.evaluate(() => navigator.clipboard.readText());
		assert.equal(link, `${server.baseUrl}/?image=${id}`);
		assert.deepEqual(await axeInBothSchemes(page, 'viewer after copying the link'), []);
		const opened = await openPage(link);
		await opened.getByTestId('viewer').waitFor();
		assert.equal(await opened.locator('img.full').getAttribute('src'), item.url);
		await opened.close();

		// This Chromium has no Web Share API (desktop Linux): no Share button then.
		assert.equal(await page.evaluate(() => typeof navigator.share), 'undefined');
		assert.equal(await viewer.getByRole('button', { name: /Share/ }).count(), 0);
		await page.close();

		// Where the browser has it (phones), Share hands the deep link to navigator.share.
		// Chromium on Linux cannot share, so the API is stood in for by one that records its call.
		const phone = await openPage(`${server.baseUrl}/?image=${id}`, PHONE, {
			beforeLoad: (tab) =>
				tab.addInitScript(() => {
					window.__shared = [];
					Object.defineProperty(Navigator.prototype, 'share', {
						configurable: true,
						value: async (data) => void window.__shared.push(data)
					});
				})
		});
		const phoneViewer = phone.getByTestId('viewer');
		await phoneViewer.waitFor();
		await phoneViewer.getByRole('button', { name: 'Share…' }).click();
		const shared = await phone.evaluate(() => window.__shared);
		assert.equal(shared.length, 1);
		assert.equal(shared[0].url, `${server.baseUrl}/?image=${id}`);
		assert.match(shared[0].title, /Dog/);
		assert.deepEqual(await axeInBothSchemes(phone, 'viewer with Share'), []);
		await phone.close();
	});

	it('says why no more pictures load while offline, and carries on once back', async () => {
		await allTakenIn();
		const page = await openPage(server.baseUrl);
		const cats = tiles(page, 'cat');
		await cats.first().waitFor();
		const shown = await cats.count();
		assert.equal(shown, PAGE_SIZE);
		const end = page.getByTestId('column-cat').locator('.end');
		const more = page.getByRole('button', { name: 'Load more cats' });
		const why = page.getByTestId('column-cat').getByTestId('load-more-offline');

		expectNetworkErrors = true;
		try {
			await browser.context.setOffline(true);
			// Reaching the end of the column asks for more (infinite scroll); a click does the same.
			await end.scrollIntoViewIfNeeded();
			if (await more.isEnabled()) await more.click({ timeout: 2000 }).catch(() => {});
			await why.waitFor({ timeout: 15_000 });
			assert.match(
				await why.innerText(),
				/Can't load more while the server is unreachable; this resumes by itself/
			);
			assert.equal(await more.isDisabled(), true);
			assert.equal(await more.getAttribute('aria-describedby'), await why.getAttribute('id'));
			await page.getByTestId('connection-banner').waitFor();
			assert.equal(await cats.count(), shown, 'kept the pictures');
			assert.deepEqual(await axeInBothSchemes(page, 'load more while offline'), []);

			await browser.context.setOffline(false);
			await why.waitFor({ state: 'detached', timeout: 30_000 });
			await eventually(async () => (await cats.count()) > shown, {
				message: 'the next page once back online'
			});
		} finally {
			await browser.context.setOffline(false);
			expectNetworkErrors = false;
		}
		await page.close();
	});

	it('asks for each first answer and first thumbnail once: the app takes what early.js asked for', async () => {
		await allTakenIn();
		const asked = [];
		const page = await openPage('about:blank', PHONE);
		page.on('request', (request) => {
			const url = new URL(request.url());
			if (url.origin === server.baseUrl) asked.push(url.pathname + url.search);
		});
		await page.goto(server.baseUrl);
		await tiles(page, 'all').nth(1).waitFor();
		await page.waitForFunction(() =>
			[...document.querySelectorAll('img.thumb')]
				.slice(0, 2)
				.every((img) => img.complete && img.naturalWidth > 0)
		);
		const count = (address) => asked.filter((path) => path === address).length;
		assert.ok(asked.includes('/early.js'));
		// static/early.js asked for these; the app took its answers rather than asking again.
		for (const address of [
			'/config.json',
			'/api/v1/stats',
			'/api/v1/images?limit=24',
			`/api/v1/images?category=cat&limit=${PAGE_SIZE}`,
			`/api/v1/images?category=dog&limit=${PAGE_SIZE}`
		]) {
			assert.equal(count(address), 1, `${address} asked for ${count(address)} times`);
		}
		// The first two thumbnails, preloaded, were fetched once too.
		const firstTwo = await page.evaluate(() =>
			[...document.querySelectorAll('img.thumb')]
				.slice(0, 2)
				.map((img) => new URL(img.currentSrc).pathname)
		);
		for (const path of firstTwo) assert.equal(count(path), 1, `${path} fetched once`);
		await page.close();
	});

	it('shows a blurred placeholder where a thumbnail is slow, and the thumbnail once it comes', async () => {
		await allTakenIn();
		let held = true;
		const page = await openPage('about:blank');
		// The server's real thumbnails, each answered a while late (a slow connection).
		await page.route('**/media/thumbs/**', async (route) => {
			while (held) await new Promise((resolve) => setTimeout(resolve, 100));
			await route.continue();
		});
		await page.goto(server.baseUrl);
		const first = tiles(page, 'cat').first();
		await first.waitFor();
		const placeholder = first.locator('img.placeholder');
		await placeholder.waitFor({ state: 'attached', timeout: 10_000 });
		assert.match((await placeholder.getAttribute('src')) ?? '', /^data:image\/png;base64,/);
		assert.equal(await placeholder.getAttribute('alt'), '', 'the placeholder is decoration');
		assert.equal(
			await first.locator('img.thumb').evaluate((img) => img.naturalWidth),
			0,
			'the thumbnail has not come yet'
		);
		held = false;
		await page.waitForFunction(() => {
			const thumb = document.querySelector('[data-testid="column-cat"] img.thumb');
			return thumb instanceof HTMLImageElement && thumb.complete && thumb.naturalWidth > 0;
		});
		await page.unrouteAll({ behavior: 'ignoreErrors' });
		await page.close();
	});

	it('has no accessibility violations (axe-core), in light and dark', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().waitFor();
		await thumbnailsInView(page);
		await page.screenshot({ path: path.join(RESULTS_DIR, 'desktop.png') });
		assert.deepEqual(await axeInBothSchemes(page, 'desktop gallery'), []);

		await tiles(page, 'dog').first().click();
		await page.getByTestId('viewer').waitFor();
		assert.deepEqual(await axeInBothSchemes(page, 'viewer'), []);
		await page.mouse.dblclick(640, 300);
		assert.deepEqual(await axeInBothSchemes(page, 'zoomed viewer'), []);
		await page.close();

		const phone = await openPage(server.baseUrl, PHONE);
		await tiles(phone, 'all').first().waitFor();
		assert.deepEqual(await axeInBothSchemes(phone, 'phone gallery'), []);
		await phone.close();
	});

	it('shows a banner while the server is down and clears it when it is back', async () => {
		const page = await openPage(server.baseUrl);
		await tiles(page, 'cat').first().waitFor();
		const shownBefore = await page.locator('[data-image-id]').count();
		const banner = page.getByTestId('connection-banner');
		// A phone with the whole list loaded: a long page to scroll while the server is away.
		const phone = await openPage(server.baseUrl, PHONE);
		const all = tiles(phone, 'all');
		await all.first().waitFor();
		await eventually(
			async () => {
				await all.last().scrollIntoViewIfNeeded();
				return phone.getByText(/That's all \d+ pictures/).isVisible();
			},
			{ message: 'the whole list on the phone' }
		);
		await phone.evaluate(() => window.scrollTo({ top: 0 }));

		expectNetworkErrors = true;
		try {
			await server.stop();
			await banner.waitFor({ timeout: 30_000 });
			assert.match(await banner.innerText(), /can't reach/i);
			assert.equal(await banner.getAttribute('role'), 'status', 'a polite live region');
			assert.equal(await page.locator('[data-image-id]').count(), shownBefore, 'kept the pictures');
			assert.deepEqual(await axeInBothSchemes(page, 'outage banner'), []);

			const phoneBanner = phone.getByTestId('connection-banner');
			await phoneBanner.waitFor({ timeout: 30_000 });
			await phone.evaluate(() => window.scrollBy({ top: 3 * window.innerHeight }));
			await phone.waitForFunction(() => window.scrollY >= 3 * window.innerHeight - 1);
			const inView = await phoneBanner.evaluate((element) => {
				const rect = element.getBoundingClientRect();
				return rect.top >= 0 && rect.bottom <= window.innerHeight && rect.height > 0;
			});
			assert.ok(inView, 'the banner stays in view after scrolling three screens');
			await phone.close();

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
