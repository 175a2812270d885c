import { beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '$lib/api/client';
import { FakeImagesApi, makeItem } from '$lib/testing/fake-images-api';
import { Feed, PAGE_SIZE } from './feed.svelte';

const T = Date.parse('2026-11-23T10:00:00Z');

describe('Feed', () => {
	let api: FakeImagesApi;
	let feed: Feed;

	beforeEach(() => {
		api = new FakeImagesApi();
		for (let n = 1; n <= PAGE_SIZE + 5; n++) api.add(makeItem(n, 'cat', T + n * 1000));
		api.add(makeItem(900, 'dog', T + 500_000));
		feed = new Feed(new ApiClient('', api.fetch), 'cat');
	});

	it('pages through one category with the cursor until the server says there is no more', async () => {
		await feed.loadMore();
		expect(feed.items).toHaveLength(PAGE_SIZE);
		expect(feed.done).toBe(false);
		expect(api.requests[0]).toBe(`/api/v1/images?category=cat&limit=${PAGE_SIZE}`);

		await feed.loadMore();
		expect(api.requests[1]).toContain('cursor=');
		expect(feed.items).toHaveLength(PAGE_SIZE + 5);
		expect(feed.done).toBe(true);
		expect(feed.items.every((item) => item.category === 'cat')).toBe(true);

		await feed.loadMore();
		expect(api.requests).toHaveLength(2);
	});

	it('does not send a second request while one is under way', async () => {
		await Promise.all([feed.loadMore(), feed.loadMore()]);
		expect(api.requests).toHaveLength(1);
	});

	it('refreshes from the first page without losing its place in the older pages', async () => {
		await feed.loadMore();
		api.add(makeItem(100, 'cat', T + 999_000));
		const added = await feed.refreshNewest();
		expect(added).toBe(1);
		expect(feed.items[0]?.id).toBe(makeItem(100, 'cat', 0).id);
		expect(api.requests[1]).not.toContain('cursor=');

		await feed.loadMore();
		expect(feed.items).toHaveLength(PAGE_SIZE + 6);
		expect(new Set(feed.items.map((item) => item.id)).size).toBe(feed.items.length);
	});

	it('holds new pictures back while asked to, then shows them on top', async () => {
		await feed.loadMore();
		const firstBefore = feed.items[0]?.id;
		api.add(makeItem(101, 'cat', T + 999_000), makeItem(102, 'cat', T + 999_500));
		expect(await feed.refreshNewest(true)).toBe(2);
		expect(feed.items[0]?.id).toBe(firstBefore);
		expect(feed.pending).toHaveLength(2);

		// A later refresh while still held does not count the same pictures twice.
		expect(await feed.refreshNewest(true)).toBe(0);
		expect(feed.pending).toHaveLength(2);

		feed.reveal();
		expect(feed.pending).toHaveLength(0);
		expect(feed.items.slice(0, 3).map((item) => item.id.slice(4, 8))).toEqual([
			'0102',
			'0101',
			firstBefore?.slice(4, 8)
		]);
	});

	it('starts again from the newest page when more arrived than a page holds', async () => {
		await feed.loadMore();
		await feed.loadMore();
		for (let n = 200; n < 200 + PAGE_SIZE + 3; n++) api.add(makeItem(n, 'cat', T + 1_000_000 + n));
		await feed.refreshNewest();
		expect(feed.items).toHaveLength(PAGE_SIZE);
		expect(feed.done).toBe(false);
		await feed.loadMore();
		await feed.loadMore();
		expect(feed.items).toHaveLength(api.images.filter((item) => item.category === 'cat').length);
		expect(feed.done).toBe(true);
	});

	it('keeps what it showed when a request fails', async () => {
		await feed.loadMore();
		api.down = true;
		await expect(feed.loadMore()).rejects.toMatchObject({ status: null });
		expect(feed.items).toHaveLength(PAGE_SIZE);
		expect(feed.loading).toBe(false);
		api.down = false;
		await feed.loadMore();
		expect(feed.items).toHaveLength(PAGE_SIZE + 5);
	});
});
