import { describe, expect, it } from 'vitest';
import {
	altText,
	breedLine,
	confidenceWords,
	extras,
	percent,
	shortAgo,
	tileLabel,
	timeAgo
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

	it('shows the breed when the server sends one', () => {
		const item = { category: 'dog', confidence: 0.99 } as const;
		expect(tileLabel(item)).toBe('Surely a dog');
		expect(tileLabel({ ...item, breed: 'Beagle', breed_probability: 0.8 })).toBe('Beagle');
		expect(tileLabel({ ...item, breed: 'Beagle', breed_probability: 0.3 })).toBe('Beagle?');
		expect(breedLine({ breed: 'Beagle', breed_probability: 0.8 })).toBe('Beagle (80% sure)');
		expect(breedLine({})).toBeNull();
		expect(extras({ breed: '  ', why: 'ears' })).toEqual({
			breed: null,
			breed_probability: null,
			why: 'ears'
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
