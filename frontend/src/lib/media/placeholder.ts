import { thumbHashToDataURL } from 'thumbhash';

const cache = new Map<string, string | null>();

/**
 * The blurred stand-in shown until a thumbnail arrives: the stored base64
 * ThumbHash decoded into a tiny PNG data URL. `null` for a missing or broken hash,
 * in which case the tile just shows its background colour.
 */
export function placeholderDataUrl(thumbhash: string | null | undefined): string | null {
	if (!thumbhash) return null;
	const cached = cache.get(thumbhash);
	if (cached !== undefined) return cached;
	let url: string | null;
	try {
		const binary = atob(thumbhash);
		const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
		url = bytes.length >= 5 ? thumbHashToDataURL(bytes) : null;
	} catch {
		url = null;
	}
	cache.set(thumbhash, url);
	return url;
}

/** The placeholder if it was decoded already, else undefined (decoding costs a few ms). */
export function decodedPlaceholder(
	thumbhash: string | null | undefined
): string | null | undefined {
	return thumbhash ? cache.get(thumbhash) : null;
}

type Scheduler = (drain: () => void) => void;

/**
 * Decoding a ThumbHash takes about 2 ms, 24 of them a page: done while the
 * tiles are first drawn, that delays the thumbnails' own requests (and so
 * the largest paint) on a slow phone, and on a fast connection the
 * thumbnails arrive before a placeholder would be seen at all. So a
 * placeholder is decoded only for a thumbnail still missing after `delayMs`,
 * when the browser is idle, a few at a time.
 */
export class PlaceholderQueue {
	readonly #schedule: Scheduler;
	readonly #delayMs: number;
	readonly #budgetMs: number;
	#tasks: Array<() => void> = [];
	#scheduled = false;

	constructor(schedule: Scheduler = idle, delayMs = 250, budgetMs = 6) {
		this.#schedule = schedule;
		this.#delayMs = delayMs;
		this.#budgetMs = budgetMs;
	}

	/**
	 * Decodes `thumbhash` in a moment and hands the result to `use`, unless
	 * the returned function was called first (the tile's thumbnail arrived, or
	 * the tile is gone).
	 */
	request(thumbhash: string, use: (url: string | null) => void): () => void {
		let wanted = true;
		const timer = setTimeout(() => {
			this.#tasks.push(() => {
				if (wanted) use(placeholderDataUrl(thumbhash));
			});
			if (!this.#scheduled) {
				this.#scheduled = true;
				this.#schedule(() => this.#drain());
			}
		}, this.#delayMs);
		return () => {
			wanted = false;
			clearTimeout(timer);
		};
	}

	#drain() {
		this.#scheduled = false;
		const until = performance.now() + this.#budgetMs;
		// At least one each time, however little time is left.
		do this.#tasks.shift()?.();
		while (this.#tasks.length > 0 && performance.now() < until);
		if (this.#tasks.length > 0) {
			this.#scheduled = true;
			this.#schedule(() => this.#drain());
		}
	}
}

function idle(drain: () => void) {
	if (typeof requestIdleCallback === 'function') requestIdleCallback(drain, { timeout: 300 });
	else setTimeout(drain, 16);
}

export const placeholders = new PlaceholderQueue();
