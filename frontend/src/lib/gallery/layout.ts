// How the page lays out its pictures; static/early.js repeats these (its
// unit test, src/lib/api/early.spec.ts, checks that it does).

/** From this width the cats and dogs are two columns side by side; below it, tabs. */
export const WIDE_QUERY = '(min-width: 56rem)';

/** The `sizes` of a tile's picture: how wide a tile is drawn at each screen width. */
export const TILE_SIZES =
	'(min-width: 90rem) 13rem, (min-width: 56rem) 21vw, (min-width: 30rem) 30vw, 46vw';

/**
 * The first tiles of a grid (its first row on a phone): their thumbnails are
 * asked for at once and first, the others once these are on screen
 * (src/lib/media/first-pictures.svelte.ts).
 */
export const EAGER_TILES = 2;
