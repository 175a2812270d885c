import type { ApiClient } from '$lib/api/client';
import type { GalleryCategory, ImageItem } from '$lib/api/types';
import { appendPage, mergeNewest } from './timeline';

export const PAGE_SIZE = 24;

/**
 * One category's pictures, newest first, paged with the server's cursor.
 * Loading more follows `next_cursor`; refreshing asks for the first page again
 * and merges what is new on top without touching the cursor.
 */
export class Feed {
	readonly category: GalleryCategory;
	items = $state.raw<ImageItem[]>([]);
	/** The first page has been loaded at least once. */
	started = $state(false);
	/** The server said there is nothing older. */
	done = $state(false);
	loading = $state(false);

	readonly #client: ApiClient;
	#cursor: string | null = null;

	constructor(client: ApiClient, category: GalleryCategory) {
		this.#client = client;
		this.category = category;
	}

	/** Loads the next page; the first call loads the first one. Throws ApiError on failure. */
	async loadMore(): Promise<void> {
		if (this.loading || this.done) return;
		this.loading = true;
		try {
			const page = await this.#client.listImages({
				category: this.category,
				limit: PAGE_SIZE,
				...(this.#cursor ? { cursor: this.#cursor } : {})
			});
			this.items = appendPage(this.items, page.items);
			this.#cursor = page.next_cursor ?? null;
			this.done = this.#cursor === null;
			this.started = true;
		} finally {
			this.loading = false;
		}
	}

	/**
	 * Fetches the newest page and puts new pictures on top. Returns how many were added.
	 * `apply` lets the page keep its scroll position steady around the change.
	 */
	async refreshNewest(apply: (change: () => void) => Promise<void> = runNow): Promise<number> {
		if (!this.started) {
			const before = this.items.length;
			await this.loadMore();
			return this.items.length - before;
		}
		const page = await this.#client.listImages({ category: this.category, limit: PAGE_SIZE });
		const merged = mergeNewest(this.items, page.items, page.items.length >= PAGE_SIZE);
		if (merged.added === 0) return 0;
		await apply(() => {
			this.items = merged.items;
			if (merged.gap) {
				this.#cursor = page.next_cursor ?? null;
				this.done = this.#cursor === null;
			}
		});
		return merged.added;
	}
}

async function runNow(change: () => void): Promise<void> {
	change();
}
