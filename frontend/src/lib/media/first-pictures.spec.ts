import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FirstPictures } from './first-pictures.svelte';

describe('FirstPictures', () => {
	beforeEach(() => vi.useFakeTimers());
	afterEach(() => vi.useRealTimers());

	it('holds the other pictures until every first one has arrived or failed', () => {
		const first = new FirstPictures(2500);
		const arrived = [first.wait(), first.wait(), first.wait()];
		expect(first.released).toBe(false);
		arrived[0]!();
		arrived[1]!();
		arrived[1]!(); // the same one twice counts once
		expect(first.released).toBe(false);
		arrived[2]!();
		expect(first.released).toBe(true);
	});

	it('lets them load anyway when the first ones take too long', () => {
		const first = new FirstPictures(2500);
		first.wait();
		vi.advanceTimersByTime(2499);
		expect(first.released).toBe(false);
		vi.advanceTimersByTime(1);
		expect(first.released).toBe(true);
	});

	it('holds nothing once released', () => {
		const first = new FirstPictures(2500);
		first.wait()();
		expect(first.released).toBe(true);
		first.wait();
		expect(first.released).toBe(true);
	});
});
