import { describe, expect, it } from 'vitest';
import { makeItem } from '$lib/testing/fake-images-api';
import { appendPage, countDistinct, mergeNewest } from './timeline';

const T = Date.parse('2026-11-23T10:00:00Z');
const cat = (n: number, minutesAgo: number) => makeItem(n, 'cat', T - minutesAgo * 60_000);
const dog = (n: number, minutesAgo: number) => makeItem(n, 'dog', T - minutesAgo * 60_000);
const ids = (items: { id: string }[]) => items.map((item) => item.id.slice(4, 8));

describe('mergeNewest', () => {
	it("puts new pictures on top, in the server's order, and keeps the shown ones in place", () => {
		const shown = [cat(3, 3), cat(2, 4), cat(1, 5)];
		const newest = [cat(5, 1), cat(4, 2), cat(3, 3), cat(2, 4)];
		const merged = mergeNewest(shown, newest, false);
		expect(ids(merged.items)).toEqual(['0005', '0004', '0003', '0002', '0001']);
		expect(merged.added).toBe(2);
		expect(merged.gap).toBe(false);
	});

	it('changes nothing when nothing is new', () => {
		const shown = [cat(2, 4), cat(1, 5)];
		const merged = mergeNewest(shown, [cat(2, 4), cat(1, 5)], true);
		expect(merged.added).toBe(0);
		expect(ids(merged.items)).toEqual(['0002', '0001']);
	});

	it('starts again from the fresh page when more arrived than a page holds', () => {
		const shown = [cat(1, 50)];
		const merged = mergeNewest(shown, [cat(9, 1), cat(8, 2)], true);
		expect(merged.gap).toBe(true);
		expect(ids(merged.items)).toEqual(['0009', '0008']);
	});

	it('joins a short fresh page even without overlap: it is the whole collection', () => {
		const merged = mergeNewest([cat(1, 50)], [cat(9, 1)], false);
		expect(merged.gap).toBe(false);
		expect(ids(merged.items)).toEqual(['0009', '0001']);
	});
});

describe('appendPage', () => {
	it('adds the older page below without repeating a picture', () => {
		expect(ids(appendPage([cat(3, 1), cat(2, 2)], [cat(2, 2), cat(1, 3)]))).toEqual([
			'0003',
			'0002',
			'0001'
		]);
	});
});

describe('countDistinct', () => {
	it('counts a picture once even when two lists hold it', () => {
		expect(countDistinct([[cat(1, 1), dog(2, 1)], [cat(1, 1)], []])).toBe(2);
	});
});
