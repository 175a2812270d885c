import type { ImageItem } from '$lib/api/types';

// Lists keep the server's order (its gallery positions, newest first); nothing here re-sorts.
type Dated = Pick<ImageItem, 'id'>;

/** Adds `page` after `shown`, dropping pictures `shown` already has. */
export function appendPage<T extends Dated>(shown: readonly T[], page: readonly T[]): T[] {
	const seen = new Set(shown.map((item) => item.id));
	return [...shown, ...page.filter((item) => !seen.has(item.id))];
}

export interface MergeResult<T> {
	items: T[];
	/** How many pictures were not shown before. */
	added: number;
	/**
	 * True when the fresh first page shares nothing with what is shown: more
	 * pictures arrived than one page holds, so the list cannot be joined up and
	 * must start again from the fresh page.
	 */
	gap: boolean;
}

/**
 * Merges the newest page (fetched with no cursor) into the pictures already shown.
 * New pictures go on top, known ones keep their place, so what the visitor is
 * looking at does not change.
 */
export function mergeNewest<T extends Dated>(
	shown: readonly T[],
	newest: readonly T[],
	pageIsFull: boolean
): MergeResult<T> {
	const known = new Set(shown.map((item) => item.id));
	const fresh = newest.filter((item) => !known.has(item.id));
	const overlaps = fresh.length < newest.length;
	const gap = shown.length > 0 && !overlaps && pageIsFull;
	if (gap) return { items: [...newest], added: fresh.length, gap };
	return { items: [...fresh, ...shown], added: fresh.length, gap: false };
}

/** How many different pictures the lists hold together (a cat is in "cat" and in "all"). */
export function countDistinct(lists: readonly (readonly Dated[])[]): number {
	return new Set(lists.flatMap((list) => list.map((item) => item.id))).size;
}
