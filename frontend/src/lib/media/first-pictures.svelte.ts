/**
 * The pictures on screen first, the rest after them. Chromium's lazy loading
 * starts every image within 1250 px of the screen at once, which on a phone
 * is the whole first page of thumbnails: two dozen downloads sharing a slow
 * connection with the few on screen, each of those arriving later for it.
 * So tiles past the first ones (`eager`, EAGER_TILES) wait to start theirs until the
 * eager ones have arrived or failed, or `fallbackMs` has passed.
 */
export class FirstPictures {
	/** The eager thumbnails are done (or took too long): the others may load. */
	released = $state(false);
	readonly #fallbackMs: number;
	#waiting = 0;
	#timer: ReturnType<typeof setTimeout> | null = null;

	constructor(fallbackMs = 2500) {
		this.#fallbackMs = fallbackMs;
	}

	/**
	 * An eager thumbnail starts loading. Call the returned function once it
	 * has loaded or failed, or its tile is gone (more than once is harmless).
	 */
	wait(): () => void {
		if (this.released) return () => {};
		this.#waiting += 1;
		this.#timer ??= setTimeout(() => this.#release(), this.#fallbackMs);
		let done = false;
		return () => {
			if (done) return;
			done = true;
			this.#waiting -= 1;
			if (this.#waiting === 0) this.#release();
		};
	}

	#release() {
		if (this.#timer !== null) clearTimeout(this.#timer);
		this.#timer = null;
		this.released = true;
	}
}

/** The page's: once released, it stays so (pictures loaded later are not held). */
export const firstPictures = new FirstPictures();
