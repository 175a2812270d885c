import { describe, expect, it } from 'vitest';
import { ApiClient } from '$lib/api/client';
import { DEFAULT_CONFIG } from '$lib/config/config';
import { retryDelayMs, SETTLE_MS } from '$lib/ingest/countdown';
import { FakeImagesApi, makeItem } from '$lib/testing/fake-images-api';
import { Gallery } from './gallery.svelte';

const T = Date.parse('2026-11-23T10:00:00Z');

function setUp() {
	const api = new FakeImagesApi();
	api.add(makeItem(1, 'cat', T - 60_000), makeItem(2, 'dog', T - 50_000));
	const gallery = new Gallery(DEFAULT_CONFIG, new ApiClient('', api.fetch));
	return { api, gallery };
}

describe('Gallery', () => {
	it('loads stats and both columns, then waits for the next ingestion', async () => {
		const { api, gallery } = setUp();
		api.nextIngestAt = new Date(T + 30_000).toISOString();
		await gallery.refresh(() => T);
		expect(gallery.stats?.total_images).toBe(2);
		expect(gallery.feeds.cat.items.map((item) => item.category)).toEqual(['cat']);
		expect(gallery.feeds.dog.items.map((item) => item.category)).toEqual(['dog']);
		expect(gallery.refreshAt).toBe(T + 30_000 + SETTLE_MS);
		expect(gallery.unreachable).toBe(false);
		expect(gallery.empty).toBe(false);
	});

	it('adds new pictures on top when the countdown runs out', async () => {
		const { api, gallery } = setUp();
		await gallery.refresh(() => T);
		api.add(makeItem(3, 'cat', T + 1000));
		await gallery.tick(gallery.refreshAt - 1);
		expect(gallery.feeds.cat.items).toHaveLength(1);
		await gallery.tick(gallery.refreshAt);
		expect(gallery.feeds.cat.items.map((item) => item.id.slice(4, 8))).toEqual(['0003', '0001']);
		expect(gallery.lastAdded).toBe(1);
	});

	it('keeps new pictures waiting while the visitor is scrolled down', async () => {
		const api = new FakeImagesApi();
		api.add(makeItem(1, 'cat', T - 60_000));
		let scrolledDown = false;
		const gallery = new Gallery(DEFAULT_CONFIG, new ApiClient('', api.fetch), () => scrolledDown);
		await gallery.refresh(() => T);
		scrolledDown = true;
		api.add(makeItem(2, 'cat', T), makeItem(3, 'dog', T));
		await gallery.refresh(() => T + 60_000);
		expect(gallery.waiting).toBe(2);
		expect(gallery.feeds.cat.items).toHaveLength(1);
		gallery.revealNew();
		expect(gallery.waiting).toBe(0);
		expect(gallery.feeds.cat.items.map((item) => item.id.slice(4, 8))).toEqual(['0002', '0001']);
		expect(gallery.feeds.dog.items).toHaveLength(1);
	});

	it('announces only what arrived after the first load, and whether it waits', async () => {
		const api = new FakeImagesApi();
		api.add(makeItem(1, 'cat', T - 60_000), makeItem(2, 'dog', T - 50_000));
		let held = false;
		const gallery = new Gallery(DEFAULT_CONFIG, new ApiClient('', api.fetch), () => held);
		await gallery.refresh(() => T);
		expect(gallery.lastAdded).toBe(0);
		expect(gallery.updatedAt).toBe(T);
		held = true;
		api.add(makeItem(3, 'cat', T));
		await gallery.refresh(() => T + 60_000);
		expect(gallery.lastAdded).toBe(1);
		expect(gallery.lastHeld).toBe(true);
		expect(gallery.waiting).toBe(1);
		// Nothing new, but nothing holds them any more: the waiting picture comes in.
		held = false;
		await gallery.refresh(() => T + 120_000);
		expect(gallery.waiting).toBe(0);
		expect(gallery.feeds.cat.items).toHaveLength(2);
	});

	it('keeps the pictures and retries when the server is unreachable, and recovers', async () => {
		const { api, gallery } = setUp();
		await gallery.refresh(() => T);
		api.down = true;
		await gallery.refresh(() => T + 1000);
		expect(gallery.unreachable).toBe(true);
		expect(gallery.feeds.cat.items).toHaveLength(1);
		expect(gallery.refreshAt).toBe(T + 1000 + retryDelayMs(1));
		await gallery.refresh(() => T + 5000);
		expect(gallery.refreshAt).toBe(T + 5000 + retryDelayMs(2));

		api.down = false;
		await gallery.refresh(() => T + 20_000);
		expect(gallery.unreachable).toBe(false);
	});

	it('says the collection is empty only once both columns answered with nothing', async () => {
		const api = new FakeImagesApi();
		const gallery = new Gallery(DEFAULT_CONFIG, new ApiClient('', api.fetch));
		expect(gallery.empty).toBe(false);
		await gallery.refresh(() => T);
		expect(gallery.empty).toBe(true);
	});

	it('loads the All tab only once it is shown, and keeps it fresh from then on', async () => {
		const { api, gallery } = setUp();
		await gallery.refresh(() => T);
		expect(api.requests.some((path) => path === '/api/v1/images?limit=24')).toBe(false);
		await gallery.loadMore('all');
		expect(gallery.feeds.all.items.map((item) => item.category)).toEqual(['dog', 'cat']);
		api.add(makeItem(3, 'cat', T + 1000));
		await gallery.refresh(() => T + 60_000);
		expect(gallery.feeds.all.items[0]?.id).toBe(makeItem(3, 'cat', 0).id);
		expect(gallery.lastAdded).toBe(1);
	});
});
