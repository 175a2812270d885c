// static/early.js, run as the browser would (a plain script), against the
// in-memory API, and the app's own first requests beside it.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ApiClient } from '$lib/api/client';
import { withEarlyResponses } from '$lib/api/early';
import { DEFAULT_CONFIG, loadConfig } from '$lib/config/config';
import { Gallery } from '$lib/gallery/gallery.svelte';
import { EAGER_TILES, TILE_SIZES, WIDE_QUERY } from '$lib/gallery/layout';
import { thumbnail, tileSrcset } from '$lib/media/thumbnail';
import { FakeImagesApi, makeItem } from '$lib/testing/fake-images-api';

const SOURCE = readFileSync(new URL('../../../static/early.js', import.meta.url), 'utf8');
const PAGE = 'http://gallery.test/';
const T = Date.parse('2026-11-23T10:00:00Z');

interface FakeLink {
	rel?: string;
	as?: string;
	href?: string;
	attributes: Record<string, string>;
}

function setUp() {
	const api = new FakeImagesApi();
	for (let n = 0; n < 30; n++) api.add(makeItem(n, n % 3 === 0 ? 'dog' : 'cat', T - n * 1000));
	api.add(makeItem(99, 'other', T));
	/** Every request that reached the network, from early.js or the app. */
	const network: string[] = [];
	const fetch: typeof globalThis.fetch = async (input, init) => {
		const url = new URL(String(input), PAGE);
		network.push(url.pathname + url.search);
		if (url.pathname === '/config.json') return Response.json({ apiBaseUrl: '' });
		return api.fetch(url.href, init);
	};
	return { api, fetch, network };
}

/** Runs static/early.js for a page at `address`, on a wide screen or a phone. */
async function runEarly(address: string, wide: boolean, fetch: typeof globalThis.fetch) {
	const links: FakeLink[] = [];
	const window: { matchMedia: (query: string) => { matches: boolean } } & Record<string, unknown> =
		{ matchMedia: (query) => ({ matches: query === WIDE_QUERY && wide }) };
	const document = {
		currentScript: { src: new URL('early.js', PAGE).href },
		head: { appendChild: (link: FakeLink) => links.push(link) },
		createElement: (): FakeLink =>
			({
				attributes: {},
				setAttribute(this: FakeLink, name: string, value: string) {
					this.attributes[name] = value;
				}
			}) as FakeLink
	};
	vm.runInNewContext(SOURCE, {
		window,
		document,
		location: new URL(address),
		fetch,
		URL,
		URLSearchParams
	});
	// Let its requests and their answers settle.
	for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 0));
	const early = window.__catdogEarly as Map<string, Promise<Response>>;
	return { early, links };
}

/** What the page asks for first (src/routes/+page.svelte's start), through `fetch`. */
async function pageStart(
	wide: boolean,
	tab: 'all' | 'cat' | 'dog' | 'other',
	fetch: typeof globalThis.fetch
) {
	const config = await loadConfig('/config.json', fetch);
	const gallery = new Gallery(
		config ?? DEFAULT_CONFIG,
		new ApiClient(config?.apiBaseUrl ?? '', fetch)
	);
	const own = !wide && (tab === 'all' || tab === 'other') ? gallery.loadMore(tab) : null;
	await gallery.refresh(() => T);
	await own;
	return gallery;
}

describe('static/early.js', () => {
	for (const [label, address, wide, tab] of [
		['a wide screen', PAGE, true, 'all'],
		["a phone's All tab", PAGE, false, 'all'],
		["a phone's Dogs tab", `${PAGE}?tab=dog`, false, 'dog'],
		["a phone's Refused tab", `${PAGE}?tab=other&image=x`, false, 'other']
	] as const) {
		it(`asks for exactly what the page asks for first, on ${label}`, async () => {
			const alone = setUp();
			await pageStart(wide, tab, alone.fetch);
			const pageAsks = [...alone.network].sort();

			const both = setUp();
			await runEarly(address, wide, both.fetch);
			const earlyAsks = [...both.network].sort();
			expect(earlyAsks).toEqual(pageAsks);
		});
	}

	it('hands its answers to the page, which then asks the network for nothing more at start', async () => {
		const { fetch, network } = setUp();
		const { early } = await runEarly(PAGE, false, fetch);
		const asked = network.length;
		const fetchEarly = withEarlyResponses(
			fetch,
			() => early,
			() => PAGE
		);
		const gallery = await pageStart(false, 'all', fetchEarly);
		expect(network).toHaveLength(asked);
		expect(gallery.feeds.all.items).toHaveLength(24);
		expect(gallery.feeds.cat.items.every((item) => item.category === 'cat')).toBe(true);
		expect(gallery.stats?.by_category.other).toBe(1);
		// Each answer once: the next refresh asks the network again.
		await gallery.refresh(() => T + 60_000);
		expect(network.length).toBeGreaterThan(asked);
	});

	it('preloads the first thumbnails on screen as their tiles will ask for them', async () => {
		const { api, fetch } = setUp();
		const { links } = await runEarly(PAGE, true, fetch);
		const firstCats = api.images.filter((item) => item.category === 'cat').slice(0, EAGER_TILES);
		const firstDogs = api.images.filter((item) => item.category === 'dog').slice(0, EAGER_TILES);
		expect(links.map((link) => [link.rel, link.as, link.href])).toEqual(
			[...firstCats, ...firstDogs].map((item) => ['preload', 'image', thumbnail(item).src])
		);
		for (const [link, item] of links.map(
			(link, i) => [link, [...firstCats, ...firstDogs][i]!] as const
		)) {
			expect(link.attributes.imagesrcset).toBe(tileSrcset(item));
			expect(link.attributes.imagesizes).toBe(TILE_SIZES);
			expect(link.attributes.fetchpriority).toBe('high');
		}
	});

	it('leaves the page to its own requests when config.json cannot be had', async () => {
		const { network } = setUp();
		const down: typeof globalThis.fetch = async (input) => {
			network.push(String(input));
			return new Response('', { status: 503 });
		};
		const { early, links } = await runEarly(PAGE, true, down);
		expect(network).toEqual([`${PAGE}config.json`]);
		expect(links).toEqual([]);
		// The page's own config request gets the same answer, and retries on its schedule.
		const fetchEarly = withEarlyResponses(
			down,
			() => early,
			() => PAGE
		);
		expect(await loadConfig('/config.json', fetchEarly)).toBeNull();
		expect(network).toHaveLength(1);
	});
});
