import { describe, expect, it } from 'vitest';
import { altText, percent, timeAgo } from './describe';

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
