import { beforeEach, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '$lib/api/client';
import { FakeImagesApi, makeItem } from '$lib/testing/fake-images-api';
import { AroundWindow } from './around.svelte';

const T = Date.parse('2026-11-23T10:00:00Z');

describe('AroundWindow', () => {
	let api: FakeImagesApi;
	let client: ApiClient;
	/** The cats, newest first, as the server lists them. */
	let cats: string[];

	beforeEach(() => {
		api = new FakeImagesApi();
		for (let n = 1; n <= 60; n++) api.add(makeItem(n, 'cat', T + n * 1000));
		for (let n = 100; n <= 110; n++) api.add(makeItem(n, 'dog', T + n * 1000));
		api.add(makeItem(200, 'other', T));
		client = new ApiClient('', api.fetch);
		cats = api.images.filter((item) => item.category === 'cat').map((item) => item.id);
	});

	it('opens a deep picture with its neighbours and its place in the category', async () => {
		const window = new AroundWindow(client, 'cat', 24);
		const fiftieth = cats[49] as string;
		expect(await window.open(fiftieth)).toBe(true);
		expect(api.requests[0]).toBe(`/api/v1/images?category=cat&limit=24&around=${fiftieth}`);
		const index = window.items.findIndex((item) => item.id === fiftieth);
		expect(index).toBeGreaterThan(0);
		expect((window.first ?? 0) + index).toBe(50);
		expect(window.total).toBe(60);
		expect(window.hasNewer).toBe(true);
		expect(window.hasOlder).toBe(false);
	});

	it('steps across page boundaries both ways, keeping every position true', async () => {
		const window = new AroundWindow(client, 'cat', 10);
		await window.open(cats[30] as string);
		const firstBefore = window.first;
		await window.loadNewer();
		expect(window.first).toBe((firstBefore ?? 0) - 10);
		await window.loadOlder();
		for (const [index, item] of window.items.entries()) {
			expect(cats.indexOf(item.id) + 1).toBe((window.first ?? 0) + index);
		}
		while (window.hasNewer) await window.loadNewer();
		expect(window.first).toBe(1);
		expect(window.items[0]?.id).toBe(cats[0]);
		while (window.hasOlder) await window.loadOlder();
		expect(window.items.map((item) => item.id)).toEqual(cats);
	});

	it('lists the refused pictures on their own, and cats and dogs without a category', async () => {
		const refused = api.images.find((item) => item.category === 'other');
		const others = new AroundWindow(client, 'other', 24);
		expect(await others.open(refused?.id ?? '')).toBe(true);
		expect(others.total).toBe(1);
		const both = new AroundWindow(client, null, 24);
		expect(await both.open(cats[0] as string)).toBe(true);
		expect(both.total).toBe(71);
	});

	it('says when the picture is not in the listing', async () => {
		const window = new AroundWindow(client, 'dog', 24);
		await expect(window.open(cats[0] as string)).rejects.toBeInstanceOf(ApiError);
	});

	it('tells a server without around apart (its answer lacks the picture)', async () => {
		const old = new AroundWindow(
			new ApiClient('', async () => Response.json({ items: [], next_cursor: null })),
			'cat',
			24
		);
		expect(await old.open(cats[0] as string)).toBe(false);
	});
});
