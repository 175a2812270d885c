import type { ImageItem } from '$lib/api/types';

const CATEGORY_NAMES: Record<string, { one: string; many: string; emoji: string }> = {
	cat: { one: 'Cat', many: 'Cats', emoji: '🐈' },
	dog: { one: 'Dog', many: 'Dogs', emoji: '🐕' },
	other: { one: 'Other', many: 'Others', emoji: '🖼️' }
};

export function categoryName(category: string | null | undefined, plural = false): string {
	if (!category) return plural ? 'Pictures' : 'Picture';
	const names = CATEGORY_NAMES[category];
	if (!names) return category;
	return plural ? names.many : names.one;
}

export function categoryEmoji(category: string | null | undefined): string {
	return (category && CATEGORY_NAMES[category]?.emoji) || '';
}

/** "97%": confidence as a whole percentage, never rounded up to a certainty it did not have. */
export function percent(confidence: number | null | undefined): string {
	if (confidence === null || confidence === undefined) return '?%';
	const value = Math.floor(Math.min(1, Math.max(0, confidence)) * 100);
	return `${value}%`;
}

const UNITS: [limitSecs: number, secsPerUnit: number, unit: string][] = [
	[3600, 60, 'minute'],
	[86_400, 3600, 'hour'],
	[2_592_000, 86_400, 'day'],
	[31_536_000, 2_592_000, 'month'],
	[Infinity, 31_536_000, 'year']
];

/** "just now", "3 minutes ago", "1 hour ago", … */
export function timeAgo(isoTime: string, now: number): string {
	const seconds = Math.max(0, (now - Date.parse(isoTime)) / 1000);
	if (Number.isNaN(seconds)) return 'at an unknown time';
	if (seconds < 60) return 'just now';
	for (const [limit, perUnit, unit] of UNITS) {
		if (seconds < limit) {
			const count = Math.floor(seconds / perUnit);
			return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
		}
	}
	return 'long ago';
}

/** Alt text that says what a sighted visitor gets from the tile: "Cat, 97% sure, added 3 minutes ago". */
export function altText(
	item: Pick<ImageItem, 'category' | 'confidence' | 'created_at'>,
	now: number
) {
	const sure = item.confidence == null ? '' : `, ${percent(item.confidence)} sure`;
	return `${categoryName(item.category)}${sure}, added ${timeAgo(item.created_at, now)}`;
}

/** "thecatapi · abc": where a picture came from. */
export function sourceLabel(item: Pick<ImageItem, 'source' | 'source_ref'>): string {
	return item.source_ref ? `${item.source} · ${item.source_ref}` : item.source;
}

/** A full local date and time for the viewer's details. */
export function fullTime(isoTime: string): string {
	const time = new Date(isoTime);
	if (Number.isNaN(time.getTime())) return isoTime;
	return time.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
