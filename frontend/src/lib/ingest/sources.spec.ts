import { describe, expect, it } from 'vitest';
import { allSourcesFailing } from './sources';

const failed = (name: string, at = '2026-11-23T10:00:00Z') => ({
	name,
	last_error: `${name} timed out`,
	last_error_at: at,
	last_success_at: null
});

describe('allSourcesFailing', () => {
	it('names every source and its error when all failed', () => {
		expect(allSourcesFailing({ sources: [failed('thecatapi'), failed('dogceo')] })).toEqual([
			{ name: 'thecatapi', error: 'thecatapi timed out' },
			{ name: 'dogceo', error: 'dogceo timed out' }
		]);
	});

	it('is empty when one source works, or worked after its failure, or nothing is known', () => {
		const working = { name: 'dogceo', last_error: null, last_error_at: null };
		expect(allSourcesFailing({ sources: [failed('thecatapi'), working] })).toEqual([]);
		const recovered = { ...failed('dogceo'), last_success_at: '2026-11-23T10:01:00Z' };
		expect(allSourcesFailing({ sources: [failed('thecatapi'), recovered] })).toEqual([]);
		expect(allSourcesFailing({ sources: [] })).toEqual([]);
		expect(allSourcesFailing(null)).toEqual([]);
	});
});
