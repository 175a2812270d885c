// A stand-in for the read API inside unit tests only: an in-memory list of
// images answered through the same fetch() interface the real server has, with
// keyset cursors. The browser tests run against the real `catdog serve`.
import type { ImageItem, Stats } from '$lib/api/types';

export function makeItem(
	n: number,
	category: 'cat' | 'dog' | 'other',
	createdAt: number
): ImageItem {
	const id = `0192${String(n).padStart(4, '0')}-0000-7000-8000-000000000000`;
	return {
		id,
		status: 'classified',
		category,
		confidence: 0.9,
		created_at: new Date(createdAt).toISOString(),
		width: 800,
		height: 600,
		url: `/media/${id}`,
		thumbnail_url: `/media/thumbs/${id}.jpg`,
		thumbnail_width: 480,
		thumbnail_height: 360,
		placeholder: '1QcSHQRnh493V4dIh4eXh1h4kJUI',
		source: 'folder',
		source_ref: `${category}.${n}.jpg`,
		why: [],
		relabelled: false
	};
}

export class FakeImagesApi {
	/** Newest first, as the server keeps them. */
	images: ImageItem[] = [];
	down = false;
	requests: string[] = [];
	lastIngestAt = '2026-11-23T09:59:00Z';
	nextIngestAt = '2026-11-23T10:00:00Z';

	add(...items: ImageItem[]) {
		this.images = [...items, ...this.images].sort((a, b) =>
			a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1
		);
	}

	fetch: typeof fetch = async (input) => {
		const url = new URL(String(input), 'http://gallery.test');
		this.requests.push(url.pathname + url.search);
		if (this.down) throw new TypeError('fetch failed');
		if (url.pathname === '/api/v1/stats') return json(this.stats());
		if (url.pathname === '/api/v1/images') {
			const category = url.searchParams.get('category');
			const limit = Number(url.searchParams.get('limit') ?? 10);
			const cursor = url.searchParams.get('cursor');
			const around = url.searchParams.get('around');
			const list = this.images.filter((item) =>
				category ? item.category === category : item.category !== 'other'
			);
			// Cursors name the picture a page continues from, and which way: "older:ID", "newer:ID".
			let start = 0;
			if (around) {
				const index = list.findIndex((item) => item.id === around);
				if (index < 0) return json({ status: 404, title: 'Not Found', detail: 'not here' }, 404);
				start = Math.max(0, index - Math.floor(limit / 2));
			} else if (cursor) {
				const [toward, id] = cursor.split(':');
				const index = list.findIndex((item) => item.id === id);
				start = toward === 'newer' ? Math.max(0, index - limit) : index + 1;
				if (toward === 'newer') {
					const items = list.slice(start, index);
					return json(this.#page(list, items, start));
				}
			}
			return json(this.#page(list, list.slice(start, start + limit), start));
		}
		const one = url.pathname.match(/^\/api\/v1\/images\/(.+)$/);
		if (one) {
			const item = this.images.find((candidate) => candidate.id === one[1]);
			if (item) return json(item);
			return json(
				{ type: 'about:blank', title: 'Not Found', status: 404, detail: 'no such image' },
				404
			);
		}
		return new Response('not found', { status: 404 });
	};

	#page(list: ImageItem[], items: ImageItem[], start: number) {
		const older = start + items.length < list.length;
		return {
			items,
			next_cursor: older && items.length ? `older:${items.at(-1)?.id}` : null,
			prev_cursor: start > 0 && items.length ? `newer:${items[0]?.id}` : null,
			position: start + 1,
			total: list.length
		};
	}

	stats(): Stats {
		const cat = this.images.filter((item) => item.category === 'cat').length;
		const dog = this.images.filter((item) => item.category === 'dog').length;
		const other = this.images.filter((item) => item.category === 'other').length;
		return {
			total_images: cat + dog,
			by_category: { cat, dog, other },
			by_status: { pending: 0, classified: cat + dog + other, rejected: 0, failed: 0 },
			last_ingest_at: this.lastIngestAt,
			next_ingest_at: this.nextIngestAt,
			ingest_interval_secs: 60,
			relabelled: 0,
			sources: [{ name: 'folder', last_error: null, last_error_at: null }]
		};
	}
}

function json(body: unknown, status = 200): Response {
	return new Response(JSON.stringify(body), {
		status,
		headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' }
	});
}
