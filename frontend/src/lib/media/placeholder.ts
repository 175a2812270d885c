/** Draws a ThumbHash as a PNG data URL (the thumbhash package's, loaded when first needed). */
export type Decoder = (hash: ArrayLike<number>) => string;

const cache = new Map<string, string | null>();

/**
 * The blurred stand-in shown until a thumbnail arrives: the stored base64
 * ThumbHash decoded into a tiny PNG data URL. `null` for a missing or broken hash,
 * in which case the tile just shows its background colour.
 */
export function placeholderDataUrl(
	thumbhash: string | null | undefined,
	decode: Decoder
): string | null {
	if (!thumbhash) return null;
	const cached = cache.get(thumbhash);
	if (cached !== undefined) return cached;
	let url: string | null;
	try {
		const binary = atob(thumbhash);
		const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
		url = bytes.length >= 5 ? decode(bytes) : null;
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
	readonly #loadDecoder: () => Promise<Decoder>;
	#decoder: Promise<Decoder> | null = null;
	#tasks: Array<(decode: Decoder) => void> = [];
	#scheduled = false;

	constructor(
		loadDecoder: () => Promise<Decoder> = loadThumbhash,
		schedule: Scheduler = idle,
		delayMs = 250,
		budgetMs = 6
	) {
		this.#loadDecoder = loadDecoder;
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
			this.#tasks.push((decode) => {
				if (wanted) use(placeholderDataUrl(thumbhash, decode));
			});
			if (!this.#scheduled) {
				this.#scheduled = true;
				this.#drainWhenIdle();
			}
		}, this.#delayMs);
		return () => {
			wanted = false;
			clearTimeout(timer);
		};
	}

	/** Loads the decoder the first time (a failed load is tried again next time), then drains. */
	#drainWhenIdle() {
		this.#decoder ??= this.#loadDecoder();
		this.#decoder.then(
			(decode) => this.#schedule(() => this.#drain(decode)),
			() => {
				this.#decoder = null;
				this.#tasks = [];
				this.#scheduled = false;
			}
		);
	}

	#drain(decode: Decoder) {
		this.#scheduled = false;
		const until = performance.now() + this.#budgetMs;
		// At least one each time, however little time is left.
		do this.#tasks.shift()?.(decode);
		while (this.#tasks.length > 0 && performance.now() < until);
		if (this.#tasks.length > 0) {
			this.#scheduled = true;
			this.#schedule(() => this.#drain(decode));
		}
	}
}

/** The thumbhash package, in a file of its own: only needed once a thumbnail is slow. */
function loadThumbhash(): Promise<Decoder> {
	return import('thumbhash').then((module) => module.thumbHashToDataURL);
}

function idle(drain: () => void) {
	if (typeof requestIdleCallback === 'function') requestIdleCallback(drain, { timeout: 300 });
	else setTimeout(drain, 16);
}

export const placeholders = new PlaceholderQueue();
