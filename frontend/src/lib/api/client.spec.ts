import { describe, expect, it } from 'vitest';
import { FakeImagesApi, makeItem } from '$lib/testing/fake-images-api';
import { ApiClient, ApiError } from './client';

describe('ApiClient', () => {
	it('asks the versioned API under the configured base URL', async () => {
		const seen: string[] = [];
		const client = new ApiClient('https://api.example.test/', async (input) => {
			seen.push(String(input));
			return Response.json({ items: [], next_cursor: null });
		});
		await client.listImages({ category: 'dog', limit: 5, cursor: 'abc=' });
		await client.listImages({});
		expect(seen).toEqual([
			'https://api.example.test/api/v1/images?category=dog&limit=5&cursor=abc%3D',
			'https://api.example.test/api/v1/images'
		]);
	});

	it('returns the typed page, one image and the stats', async () => {
		const api = new FakeImagesApi();
		const item = makeItem(1, 'cat', Date.parse('2026-11-23T10:00:00Z'));
		api.add(item);
		const client = new ApiClient('', api.fetch);
		const page = await client.listImages({ category: 'cat', limit: 10 });
		expect(page.items[0]?.thumbnail_url).toBe(item.thumbnail_url);
		expect(page.next_cursor).toBeNull();
		expect((await client.getImage(item.id)).source_ref).toBe('cat.1.jpg');
		expect((await client.getStats()).by_category.cat).toBe(1);
	});

	it('reports a problem+json answer with its status and detail', async () => {
		const client = new ApiClient('', new FakeImagesApi().fetch);
		const error = await client.getImage('nope').catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(ApiError);
		expect(error).toMatchObject({ status: 404, detail: 'no such image', unreachable: false });
	});

	it('reports an unreachable server as such', async () => {
		const api = new FakeImagesApi();
		api.down = true;
		const error = await new ApiClient('', api.fetch).getStats().catch((caught: unknown) => caught);
		expect(error).toMatchObject({ status: null, unreachable: true });
	});

	it('treats a 503 from a proxy as unreachable, even without JSON', async () => {
		const client = new ApiClient('', async () => new Response('<h1>busy</h1>', { status: 503 }));
		await expect(client.getStats()).rejects.toMatchObject({ status: 503, unreachable: true });
	});
});
