import type { ImageItem } from '$lib/api/types';

type Dated = Pick<ImageItem, 'id' | 'created_at'>;

/** Newest first; ids (UUID v7, time-ordered) break ties between equal timestamps. */
export function newestFirst(a: Dated, b: Dated): number {
	const byTime = Date.parse(b.created_at) - Date.parse(a.created_at);
	if (byTime !== 0) return byTime;
	return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

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
	const fresh = newest.filter((item) => !known.has(item.id)).sort(newestFirst);
	const overlaps = fresh.length < newest.length;
	const gap = shown.length > 0 && !overlaps && pageIsFull;
	if (gap) return { items: [...newest].sort(newestFirst), added: fresh.length, gap };
	return { items: [...fresh, ...shown], added: fresh.length, gap: false };
}

export interface TimelineSource<T> {
	items: readonly T[];
	/** No more pages to load. */
	done: boolean;
}

/**
 * The "All" tab: several newest-first lists woven into one, showing only the
 * part that is complete. A picture is shown once every list that still has
 * pages has loaded past its time; otherwise an older cat could appear before a
 * newer dog that simply has not been loaded yet.
 */
export function weave<T extends Dated>(sources: readonly TimelineSource<T>[]): T[] {
	let frontier = -Infinity;
	for (const source of sources) {
		if (source.done) continue;
		const oldest = source.items.at(-1);
		if (!oldest) return [];
		frontier = Math.max(frontier, Date.parse(oldest.created_at));
	}
	return sources
		.flatMap((source) => source.items)
		.filter((item) => Date.parse(item.created_at) >= frontier)
		.sort(newestFirst);
}

/** Which list the "All" tab should load next: the one whose oldest picture holds the weave back. */
export function nextToLoad<T extends Dated>(sources: readonly TimelineSource<T>[]): number {
	let pick = -1;
	let pickTime = -Infinity;
	sources.forEach((source, index) => {
		if (source.done) return;
		const oldest = source.items.at(-1);
		const time = oldest ? Date.parse(oldest.created_at) : Infinity;
		if (time > pickTime) {
			pick = index;
			pickTime = time;
		}
	});
	return pick;
}
