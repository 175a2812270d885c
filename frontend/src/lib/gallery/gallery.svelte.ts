import { ApiClient, ApiError } from '$lib/api/client';
import type { ListingCategory, Stats } from '$lib/api/types';
import type { PageConfig } from '$lib/config/config';
import { nextRefreshAt, retryDelayMs } from '$lib/ingest/countdown';
import { Feed } from './feed.svelte';
import { countDistinct } from './timeline';

/** Whether new pictures should wait instead of appearing at once (the visitor is scrolled down). */
export type HoldNewPictures = () => boolean;

export type RefreshPhase = 'waiting' | 'fetching';

/**
 * Everything the gallery shows, and the rhythm that keeps it fresh: after each
 * ingestion it fetches the stats and the newest pictures; when the server
 * cannot be reached it keeps what is shown and retries with a growing delay.
 */
export class Gallery {
	readonly client: ApiClient;
	readonly config: PageConfig;
	/**
	 * The Cats and Dogs columns, "all" for the phone's All tab, and "other",
	 * the refused pictures (those two are loaded only when shown).
	 */
	readonly feeds: Record<ListingCategory | 'all', Feed>;

	stats = $state.raw<Stats | null>(null);
	phase = $state<RefreshPhase>('waiting');
	/** When the next request for new pictures goes out (epoch ms). */
	refreshAt = $state(0);
	/** When the current wait began, for the header's progress bar. */
	waitStartedAt = $state(0);
	/** The server could not be reached on the last try. */
	unreachable = $state(false);
	/**
	 * Pictures the last refresh brought that were not there before (0 for the
	 * first load, which is not news), announced politely to screen readers.
	 */
	lastAdded = $state(0);
	/** Whether those pictures wait behind the "new pictures" button. */
	lastHeld = $state(false);
	/** When the server last answered a refresh (epoch ms), for "Updated 12 s ago". */
	updatedAt = $state(0);

	#failures = 0;
	#holdNewPictures: HoldNewPictures;

	constructor(
		config: PageConfig,
		client: ApiClient,
		holdNewPictures: HoldNewPictures = () => false
	) {
		this.config = config;
		this.client = client;
		this.feeds = {
			all: new Feed(client, null),
			cat: new Feed(client, 'cat'),
			dog: new Feed(client, 'dog'),
			other: new Feed(client, 'other')
		};
		this.#holdNewPictures = holdNewPictures;
	}

	/** New pictures waiting for the visitor to come back to the top. */
	get waiting(): number {
		return countDistinct(Object.values(this.feeds).map((feed) => feed.pending));
	}

	/** Shows the waiting pictures on top of their lists. */
	revealNew(): void {
		for (const feed of Object.values(this.feeds)) feed.reveal();
	}

	/** Both feeds have loaded their first page and neither has a picture. */
	get empty(): boolean {
		return (
			this.feeds.cat.started &&
			this.feeds.dog.started &&
			this.feeds.cat.items.length === 0 &&
			this.feeds.dog.items.length === 0
		);
	}

	/** Loads older pictures for one column or tab. */
	async loadMore(category: ListingCategory | 'all'): Promise<void> {
		await this.#guard(() => this.feeds[category].loadMore());
	}

	/**
	 * Asks for the stats and the newest pictures, then plans the next request.
	 * Called at start and whenever the countdown reaches zero.
	 */
	async refresh(now: () => number = Date.now): Promise<void> {
		if (this.phase === 'fetching') return;
		this.phase = 'fetching';
		try {
			const hold = this.#holdNewPictures();
			const { all, cat, dog, other } = this.feeds;
			const firstLoad = !cat.started || !dog.started;
			const [stats, newCats, newDogs] = await Promise.all([
				this.client.getStats(),
				cat.refreshNewest(hold),
				dog.refreshNewest(hold),
				// The All tab's list is kept fresh once it has been shown; its news are the same pictures.
				all.started ? all.refreshNewest(hold) : 0,
				// The refused pictures, once their view has been opened.
				other.started ? other.refreshNewest(hold) : 0
			]);
			this.stats = stats;
			// Pictures held earlier come in once nothing needs them held.
			if (!hold) this.revealNew();
			this.lastAdded = firstLoad ? 0 : newCats + newDogs;
			this.lastHeld = hold && this.waiting > 0;
			this.updatedAt = now();
			this.#failures = 0;
			this.unreachable = false;
			this.#plan(nextRefreshAt(stats, this.config.refreshIntervalSecs, now(), now()), now());
		} catch (error) {
			if (!(error instanceof ApiError)) throw error;
			this.#failed(now());
		} finally {
			this.phase = 'waiting';
		}
	}

	/** Runs the refresh when its time has come; the page calls this every second. */
	async tick(now: number = Date.now()): Promise<void> {
		if (this.phase === 'waiting' && now >= this.refreshAt) await this.refresh();
	}

	async #guard(load: () => Promise<void>): Promise<void> {
		try {
			await load();
		} catch (error) {
			if (!(error instanceof ApiError)) throw error;
			if (!this.unreachable) this.#failed(Date.now());
		}
	}

	#failed(now: number): void {
		this.#failures += 1;
		this.unreachable = true;
		this.#plan(now + retryDelayMs(this.#failures), now);
	}

	#plan(at: number, now: number): void {
		this.waitStartedAt = now;
		this.refreshAt = at;
	}
}
