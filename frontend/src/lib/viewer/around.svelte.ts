import type { ApiClient } from '$lib/api/client';
import type { ImageItem, ImagePage, ListingCategory } from '$lib/api/types';
import { appendPage } from '$lib/gallery/timeline';

/**
 * A stretch of one listing that the viewer steps through, with its place in
 * the listing: the pictures, the position of the first (1-based, newest
 * first) and how many the listing holds. Both the gallery's own lists and a
 * window opened around a shared picture are shown through this.
 */
export interface Sequence {
	readonly items: readonly ImageItem[];
	/** Position of `items[0]` in the listing, or null when the server does not say. */
	readonly first: number | null;
	/** How many pictures the listing holds, or null when the server does not say. */
	readonly total: number | null;
	readonly hasNewer: boolean;
	readonly hasOlder: boolean;
	loadNewer(): Promise<void>;
	loadOlder(): Promise<void>;
}

/**
 * The page of a listing around one picture (`?around=ID`), stepping to the
 * newer and older pages with the server's `prev_cursor` and `next_cursor`.
 * It lets a shared link to any picture open with its neighbours and its true
 * place ("50 of 60 cats"), however deep it is.
 */
export class AroundWindow implements Sequence {
	readonly category: ListingCategory | null;
	items = $state.raw<ImageItem[]>([]);
	first = $state<number | null>(null);
	total = $state<number | null>(null);
	#prevCursor = $state<string | null>(null);
	#nextCursor = $state<string | null>(null);
	#client: ApiClient;
	#limit: number;
	#loading = false;

	constructor(client: ApiClient, category: ListingCategory | null, limit: number) {
		this.#client = client;
		this.category = category;
		this.#limit = limit;
	}

	get hasNewer() {
		return this.#prevCursor !== null;
	}

	get hasOlder() {
		return this.#nextCursor !== null;
	}

	/**
	 * Loads the page around `id`. Returns false when the server's answer does
	 * not hold the picture (a server without `around`); throws ApiError when
	 * the server says it is not in this listing (404) or cannot answer.
	 */
	async open(id: string): Promise<boolean> {
		const page = await this.#client.listImages({
			...this.#categoryQuery(),
			limit: this.#limit,
			around: id
		});
		if (!page.items.some((item) => item.id === id)) return false;
		this.items = page.items;
		this.#prevCursor = page.prev_cursor ?? null;
		this.#nextCursor = page.next_cursor ?? null;
		this.#place(page, 0);
		return true;
	}

	/** Adds the older page after the last picture. */
	async loadOlder(): Promise<void> {
		const cursor = this.#nextCursor;
		if (!cursor || this.#loading) return;
		const page = await this.#load(cursor);
		if (!page) return;
		const before = this.items.length;
		this.items = appendPage(this.items, page.items);
		this.#nextCursor = page.next_cursor ?? null;
		this.#place(page, before);
	}

	/** Adds the newer page before the first picture. */
	async loadNewer(): Promise<void> {
		const cursor = this.#prevCursor;
		if (!cursor || this.#loading) return;
		const page = await this.#load(cursor);
		if (!page) return;
		// The newer page goes before, without pictures already here (appendPage keeps the first).
		this.items = appendPage(page.items, this.items);
		this.#prevCursor = page.prev_cursor ?? null;
		this.#place(page, 0);
	}

	async #load(cursor: string): Promise<ImagePage | null> {
		this.#loading = true;
		try {
			return await this.#client.listImages({
				...this.#categoryQuery(),
				limit: this.#limit,
				cursor
			});
		} finally {
			this.#loading = false;
		}
	}

	/** Takes the place the server gives for `page`, whose first item is `items[index]`. */
	#place(page: ImagePage, index: number) {
		if (typeof page.total === 'number') this.total = page.total;
		if (typeof page.position === 'number') this.first = page.position - index;
	}

	#categoryQuery() {
		return this.category ? { category: this.category } : {};
	}
}
