import type { ApiClient } from '$lib/api/client';
import type { ImageItem, ImagePage, ListingCategory } from '$lib/api/types';
import { appendPage, mergeNewest } from './timeline';

export const PAGE_SIZE = 24;

/**
 * One category's pictures (or both, for `null`), newest first, paged with the server's cursor.
 * Loading more follows `next_cursor`; refreshing asks for the first page again
 * and merges what is new on top without touching the cursor.
 */
export class Feed {
	/** `null`: cats and dogs together, as the server orders them; `other`: the refused pictures. */
	readonly category: ListingCategory | null;
	items = $state.raw<ImageItem[]>([]);
	/** The first page has been loaded at least once. */
	started = $state(false);
	/** The server said there is nothing older. */
	done = $state(false);
	loading = $state(false);
	/** New pictures held back while the visitor looks further down, newest first. */
	pending = $state.raw<ImageItem[]>([]);
	/** How many pictures the listing holds, by the server's last answer (null: not said). */
	total = $state<number | null>(null);
	/** Whether the server says where its pages sit (`position`), so `first` is known. */
	#placed = $state(false);

	readonly #client: ApiClient;
	#cursor: string | null = null;
	/** Set when the held pictures replace the list, with the cursor that continues them. */
	#restartCursor: string | null | undefined = undefined;

	constructor(client: ApiClient, category: ListingCategory | null) {
		this.#client = client;
		this.category = category;
	}

	/** Loads the next page; the first call loads the first one. Throws ApiError on failure. */
	async loadMore(): Promise<void> {
		if (this.loading || this.done) return;
		this.loading = true;
		try {
			const page = await this.#client.listImages({
				...this.#categoryQuery(),
				limit: PAGE_SIZE,
				...(this.#cursor ? { cursor: this.#cursor } : {})
			});
			this.items = appendPage(this.items, page.items);
			this.#note(page);
			this.#cursor = page.next_cursor ?? null;
			this.done = this.#cursor === null;
			this.started = true;
		} finally {
			this.loading = false;
		}
	}

	/**
	 * Fetches the newest page and takes in what is new. With `hold`, new pictures
	 * wait in `pending` (the visitor is looking further down and nothing should
	 * move under them) until `reveal()`; otherwise they go on top at once.
	 * Returns how many pictures were new.
	 */
	async refreshNewest(hold = false): Promise<number> {
		if (!this.started) {
			const before = this.items.length;
			await this.loadMore();
			return this.items.length - before;
		}
		const page = await this.#client.listImages({ ...this.#categoryQuery(), limit: PAGE_SIZE });
		this.#note(page);
		const shown = [...this.pending, ...this.items];
		const merged = mergeNewest(shown, page.items, page.items.length >= PAGE_SIZE);
		if (merged.added === 0) return 0;
		if (merged.gap) {
			// More arrived than one page holds: start again from the fresh page.
			this.pending = merged.items;
			this.#restartCursor = page.next_cursor ?? null;
		} else {
			this.pending = [...merged.items.slice(0, merged.added), ...this.pending];
		}
		if (!hold) this.reveal();
		return merged.added;
	}

	/**
	 * The position of `items[0]` in the listing (1-based): the list always
	 * starts at the newest, after the pictures held back. Null when the
	 * server does not say where its pages sit.
	 */
	get first(): number | null {
		return this.#placed ? this.pending.length + 1 : null;
	}

	#note(page: ImagePage) {
		if (typeof page.total === 'number') this.total = page.total;
		if (typeof page.position === 'number') this.#placed = true;
	}

	#categoryQuery() {
		return this.category ? { category: this.category } : {};
	}

	/** Puts the pictures that arrived while held on top of the list. */
	reveal(): void {
		if (this.pending.length === 0) return;
		if (this.#restartCursor !== undefined) {
			this.items = this.pending;
			this.#cursor = this.#restartCursor;
			this.done = this.#cursor === null;
			this.#restartCursor = undefined;
		} else {
			this.items = appendPage(this.pending, this.items);
		}
		this.pending = [];
	}
}
