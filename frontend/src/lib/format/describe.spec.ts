import { describe, expect, it } from 'vitest';
import {
	altText,
	breedLine,
	breedWords,
	confidenceWords,
	extras,
	percent,
	formatCount,
	shortAgo,
	tileLabel,
	timeAgo,
	whyLine
} from './describe';

const NOW = Date.parse('2026-11-23T10:00:00Z');

describe('altText', () => {
	it('says what the picture is, how sure we are and when it came', () => {
		const item = {
			category: 'cat',
			confidence: 0.973,
			created_at: '2026-11-23T09:57:00Z'
		} as const;
		expect(altText(item, NOW)).toBe('Cat, 97% sure, added 3 minutes ago');
		expect(altText({ ...item, category: 'dog', created_at: '2026-11-23T09:59:40Z' }, NOW)).toBe(
			'Dog, 97% sure, added just now'
		);
	});
});

describe('formatCount', () => {
	it('separates thousands with commas', () => {
		expect(formatCount(0)).toBe('0');
		expect(formatCount(999)).toBe('999');
		expect(formatCount(1000)).toBe('1,000');
		expect(formatCount(1234567)).toBe('1,234,567');
		expect(formatCount(-12345)).toBe('-12,345');
	});
});

describe('percent', () => {
	it('never rounds up to a certainty the classifier did not have', () => {
		expect(percent(0.999)).toBe('99%');
		expect(percent(1)).toBe('100%');
		expect(percent(0.5)).toBe('50%');
	});
});

describe('timeAgo', () => {
	it('uses the largest sensible unit', () => {
		expect(timeAgo('2026-11-23T09:59:00Z', NOW)).toBe('1 minute ago');
		expect(timeAgo('2026-11-23T08:00:00Z', NOW)).toBe('2 hours ago');
		expect(timeAgo('2026-11-20T10:00:00Z', NOW)).toBe('3 days ago');
		expect(timeAgo('2026-11-23T10:00:05Z', NOW)).toBe('just now');
	});
});

describe('tile wording', () => {
	it('puts the confidence in words instead of a bare percentage', () => {
		expect(confidenceWords('cat', 0.99)).toBe('Surely a cat');
		expect(confidenceWords('dog', 0.75)).toBe('Probably a dog');
		expect(confidenceWords('other', 0.4)).toBe('Neither cat nor dog');
		expect(confidenceWords('cat', null)).toBe('Cat');
	});

	it('shows the breed when the classifier is sure of it, and says so when it is not', () => {
		const item = { category: 'dog', confidence: 0.99 } as const;
		expect(tileLabel(item)).toBe('Surely a dog');
		const beagle = { ...item, breed: 'beagle', breed_probability: 0.8 };
		expect(tileLabel(beagle)).toBe('Beagle');
		expect(breedLine(beagle)).toBe('Beagle (80% sure)');
		const unsure = { ...item, breed: 'beagle', breed_probability: 0.3 };
		expect(tileLabel(unsure)).toBe('Dog, mixed / unsure');
		expect(breedLine(unsure)).toBe('mixed / unsure');
		expect(breedWords(unsure)).toBe('mixed / unsure');
		expect(breedLine({})).toBeNull();
		expect(altText({ ...beagle, created_at: '2026-11-23T09:57:00Z' }, NOW)).toBe(
			'Dog, 99% sure, Beagle, added 3 minutes ago'
		);
		expect(altText({ ...unsure, created_at: '2026-11-23T09:57:00Z' }, NOW)).toBe(
			'Dog, 99% sure, breed mixed / unsure, added 3 minutes ago'
		);
	});

	it('says why a refused picture is not in the gallery', () => {
		const refused = { category: 'other', confidence: 0.9, reason: 'not a cat or a dog' } as const;
		expect(tileLabel(refused)).toBe('Not a cat or a dog');
		expect(altText({ ...refused, created_at: '2026-11-23T09:57:00Z' }, NOW)).toBe(
			'Other, 90% sure, refused: not a cat or a dog, added 3 minutes ago'
		);
		const broken = { category: null, confidence: null, reason: 'could not decode the picture' };
		expect(tileLabel(broken)).toBe('Could not decode the picture');
	});

	it('lists the top three classes behind the verdict, most likely first', () => {
		const item = {
			why: [
				{ label: 'tiger cat', probability: 0.21 },
				{ label: 'tabby', probability: 0.62 },
				{ label: 'lynx', probability: 0.004 },
				{ label: 'Egyptian cat', probability: 0.09 },
				{ label: 'broken' }
			]
		};
		expect(whyLine(item)).toBe('tabby 62% · tiger cat 21% · Egyptian cat 9%');
		expect(whyLine({ why: [{ label: 'lynx', probability: 0.004 }] })).toBe('lynx <1%');
		expect(whyLine({ why: [] })).toBeNull();
		expect(whyLine({ why: 'a sentence from an older server' })).toBeNull();
		expect(extras({ breed: '  ', relabelled: true })).toEqual({
			breed: null,
			breed_probability: null,
			why: [],
			reason: null,
			relabelled: true
		});
	});
});

describe('shortAgo', () => {
	it('is short', () => {
		expect(shortAgo(NOW - 500, NOW)).toBe('just now');
		expect(shortAgo(NOW - 12_000, NOW)).toBe('12 s ago');
		expect(shortAgo(NOW - 180_000, NOW)).toBe('3 min ago');
	});
});
