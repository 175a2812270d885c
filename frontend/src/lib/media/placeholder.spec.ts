import { rgbaToThumbHash, thumbHashToDataURL } from 'thumbhash';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PlaceholderQueue, placeholderDataUrl } from './placeholder';

function thumbhashOfSolid(r: number, g: number, b: number): string {
	const rgba = new Uint8Array(8 * 8 * 4);
	for (let i = 0; i < 64; i++) rgba.set([r, g, b, 255], i * 4);
	return btoa(String.fromCharCode(...rgbaToThumbHash(8, 8, rgba)));
}

describe('placeholderDataUrl', () => {
	it('turns a stored ThumbHash into an image the browser can show at once', () => {
		const url = placeholderDataUrl(thumbhashOfSolid(200, 120, 40), thumbHashToDataURL);
		expect(url).toMatch(/^data:image\/png;base64,/);
		const png = atob(url!.split(',')[1]!);
		expect(png.slice(1, 4)).toBe('PNG');
	});

	it('gives different pictures different placeholders', () => {
		expect(placeholderDataUrl(thumbhashOfSolid(10, 10, 200), thumbHashToDataURL)).not.toBe(
			placeholderDataUrl(thumbhashOfSolid(200, 10, 10), thumbHashToDataURL)
		);
	});

	it('shows nothing rather than failing for a missing or broken hash', () => {
		expect(placeholderDataUrl(null, thumbHashToDataURL)).toBeNull();
		expect(placeholderDataUrl('', thumbHashToDataURL)).toBeNull();
		expect(placeholderDataUrl('%%%', thumbHashToDataURL)).toBeNull();
	});
});

describe('PlaceholderQueue', () => {
	beforeEach(() => vi.useFakeTimers());
	afterEach(() => vi.useRealTimers());
	const now = (drain: () => void) => setTimeout(drain, 0);
	const decoder = async () => thumbHashToDataURL;

	it('decodes a placeholder for a thumbnail still missing after a moment', async () => {
		const queue = new PlaceholderQueue(decoder, now, 250);
		const shown: Array<string | null> = [];
		queue.request(thumbhashOfSolid(200, 120, 40), (url) => shown.push(url));
		await vi.advanceTimersByTimeAsync(249);
		expect(shown).toEqual([]);
		await vi.advanceTimersByTimeAsync(20);
		expect(shown).toHaveLength(1);
		expect(shown[0]).toMatch(/^data:image\/png;base64,/);
	});

	it('decodes nothing for a thumbnail that arrived first', async () => {
		const queue = new PlaceholderQueue(decoder, now, 250);
		const shown: Array<string | null> = [];
		const arrived = queue.request(thumbhashOfSolid(10, 200, 40), (url) => shown.push(url));
		await vi.advanceTimersByTimeAsync(100);
		arrived();
		await vi.advanceTimersByTimeAsync(1000);
		expect(shown).toEqual([]);
	});

	it('decodes a few at a time, and all of them in the end', async () => {
		const idle: Array<() => void> = [];
		const queue = new PlaceholderQueue(decoder, (drain) => idle.push(drain), 0, 0);
		const shown: Array<string | null> = [];
		for (let i = 0; i < 5; i++) {
			queue.request(thumbhashOfSolid(i * 40, 100, 100), (url) => shown.push(url));
		}
		await vi.advanceTimersByTimeAsync(0);
		idle.shift()?.();
		expect(shown).toHaveLength(1);
		while (idle.length > 0) idle.shift()?.();
		expect(shown).toHaveLength(5);
	});
});
