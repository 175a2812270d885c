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

/**
 * Fields the API is going to add to an item (not in its OpenAPI document yet):
 * the breed the classifier saw, how sure it was, and a sentence on why.
 */
export interface ItemExtras {
	breed?: string | null;
	breed_probability?: number | null;
	why?: string | null;
}

/** The optional fields of an item, whether or not the server sends them yet. */
export function extras(item: object): ItemExtras {
	const raw = item as Record<string, unknown>;
	return {
		breed: typeof raw.breed === 'string' && raw.breed.trim() ? raw.breed.trim() : null,
		breed_probability:
			typeof raw.breed_probability === 'number' && Number.isFinite(raw.breed_probability)
				? raw.breed_probability
				: null,
		why: typeof raw.why === 'string' && raw.why.trim() ? raw.why.trim() : null
	};
}

/** "Surely a cat", "Probably a dog", "Maybe a cat": the classifier's confidence, in words. */
export function confidenceWords(
	category: string | null | undefined,
	confidence: number | null | undefined
): string {
	if (category === 'other') return 'Neither cat nor dog';
	const what = categoryName(category).toLowerCase();
	const article = /^[aeiou]/.test(what) ? 'an' : 'a';
	if (confidence === null || confidence === undefined) return categoryName(category);
	if (confidence >= 0.9) return `Surely ${article} ${what}`;
	if (confidence >= 0.7) return `Probably ${article} ${what}`;
	return `Maybe ${article} ${what}`;
}

/** What a tile says about the picture: the breed when the server knows it, else the category in words. */
export function tileLabel(item: Pick<ImageItem, 'category' | 'confidence'> & ItemExtras): string {
	const { breed, breed_probability } = extras(item);
	if (breed) return breed_probability != null && breed_probability < 0.5 ? `${breed}?` : breed;
	return confidenceWords(item.category, item.confidence);
}

/** "Siamese (82% sure)": the breed line of the viewer, or null when there is none. */
export function breedLine(item: object): string | null {
	const { breed, breed_probability } = extras(item);
	if (!breed) return null;
	return breed_probability == null ? breed : `${breed} (${percent(breed_probability)} sure)`;
}

/** "just now", "12 s ago", "3 min ago", "2 h ago": short, for the header. */
export function shortAgo(then: number, now: number): string {
	const seconds = Math.max(0, Math.floor((now - then) / 1000));
	if (seconds < 2) return 'just now';
	if (seconds < 60) return `${seconds} s ago`;
	if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
	return `${Math.floor(seconds / 3600)} h ago`;
}
