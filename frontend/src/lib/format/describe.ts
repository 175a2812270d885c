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

/**
 * "1,234": a count with thousands separators, as the page's English reads.
 * Written out rather than `toLocaleString()`: its first call loads the
 * locale's number data, tens of milliseconds on a slow phone during the first render.
 */
export function formatCount(count: number): string {
	const whole = String(Math.trunc(Math.abs(count)));
	return (count < 0 ? '-' : '') + whole.replace(/\B(?=(\d{3})+$)/g, ',');
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

/**
 * Alt text that says what a sighted visitor gets from the tile: "Cat, 97%
 * sure, Siamese cat, added 3 minutes ago"; for a refused picture, why.
 */
export function altText(
	item: Pick<ImageItem, 'category' | 'confidence' | 'created_at'>,
	now: number
) {
	const sure = item.confidence == null ? '' : `, ${percent(item.confidence)} sure`;
	const { reason } = extras(item);
	const breed = breedWords(item);
	const what =
		reason && (item.category === 'other' || !item.category)
			? `, refused: ${reason}`
			: breed === 'mixed / unsure'
				? ', breed mixed / unsure'
				: breed
					? `, ${breed}`
					: '';
	return `${categoryName(item.category)}${sure}${what}, added ${timeAgo(item.created_at, now)}`;
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

/** One ImageNet class behind a verdict, with its probability. */
export interface WhyClass {
	label: string;
	probability: number;
}

/** Below this, a breed is a guess among several: "mixed / unsure", never a fact. */
export const BREED_SURE = 0.5;
/** How many of the classes behind a verdict the page shows. */
export const WHY_SHOWN = 3;

/**
 * The fields about what a picture is: the breed the classifier saw and how
 * sure it was, the classes behind the verdict, why a refused picture was
 * refused, and whether an operator corrected it. Read defensively: older
 * servers leave them out, and the page must still show the picture.
 */
export interface ItemExtras {
	breed: string | null;
	breed_probability: number | null;
	why: WhyClass[];
	reason: string | null;
	relabelled: boolean;
}

const text = (value: unknown) => (typeof value === 'string' && value.trim() ? value.trim() : null);
const probability = (value: unknown) =>
	typeof value === 'number' && Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : null;

/** The optional fields of an item, whether or not the server sends them. */
export function extras(item: object): ItemExtras {
	const raw = item as Record<string, unknown>;
	const why: WhyClass[] = [];
	if (Array.isArray(raw.why)) {
		for (const entry of raw.why as unknown[]) {
			if (!entry || typeof entry !== 'object') continue;
			const label = text((entry as Record<string, unknown>).label);
			const chance = probability((entry as Record<string, unknown>).probability);
			if (label && chance !== null) why.push({ label, probability: chance });
		}
	}
	why.sort((a, b) => b.probability - a.probability);
	return {
		breed: text(raw.breed),
		breed_probability: probability(raw.breed_probability),
		why: why.slice(0, WHY_SHOWN),
		reason: text(raw.reason),
		relabelled: raw.relabelled === true
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

/** "Golden retriever": a class name as a label starts with a capital. */
export function capitalized(name: string): string {
	return name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * The breed in words: the name when the classifier is sure enough, "mixed /
 * unsure" when it is not, null when the server does not say.
 */
export function breedWords(item: object): string | null {
	const { breed, breed_probability } = extras(item);
	if (!breed) return null;
	if (breed_probability !== null && breed_probability < BREED_SURE) return 'mixed / unsure';
	return capitalized(breed);
}

/**
 * What a tile says about the picture: the breed when the server knows it
 * ("Beagle", "Dog, mixed / unsure"), why a refused picture was refused,
 * else the category's confidence in words.
 */
export function tileLabel(item: Pick<ImageItem, 'category' | 'confidence'>): string {
	const more = extras(item);
	if (more.reason && (item.category === 'other' || !item.category)) return capitalized(more.reason);
	const breed = breedWords(item);
	if (breed === 'mixed / unsure') return `${categoryName(item.category)}, mixed / unsure`;
	if (breed) return breed;
	return confidenceWords(item.category, item.confidence);
}

/** "Siamese cat (82% sure)", "mixed / unsure": the breed line of the viewer, or null. */
export function breedLine(item: object): string | null {
	const { breed_probability } = extras(item);
	const words = breedWords(item);
	if (!words || words === 'mixed / unsure' || breed_probability === null) return words;
	return `${words} (${percent(breed_probability)} sure)`;
}

/** "tabby 62% · tiger cat 21% · Egyptian cat 9%": the top classes behind the verdict, or null. */
export function whyLine(item: object): string | null {
	const { why } = extras(item);
	if (why.length === 0) return null;
	return why
		.map(
			(entry) => `${entry.label} ${entry.probability < 0.01 ? '<1%' : percent(entry.probability)}`
		)
		.join(' · ');
}

/** "just now", "12 s ago", "3 min ago", "2 h ago": short, for the header. */
export function shortAgo(then: number, now: number): string {
	const seconds = Math.max(0, Math.floor((now - then) / 1000));
	if (seconds < 2) return 'just now';
	if (seconds < 60) return `${seconds} s ago`;
	if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
	return `${Math.floor(seconds / 3600)} h ago`;
}
