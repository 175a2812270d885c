import { rgbaToThumbHash } from 'thumbhash';
import { describe, expect, it } from 'vitest';
import { placeholderDataUrl } from './placeholder';

function thumbhashOfSolid(r: number, g: number, b: number): string {
	const rgba = new Uint8Array(8 * 8 * 4);
	for (let i = 0; i < 64; i++) rgba.set([r, g, b, 255], i * 4);
	return btoa(String.fromCharCode(...rgbaToThumbHash(8, 8, rgba)));
}

describe('placeholderDataUrl', () => {
	it('turns a stored ThumbHash into an image the browser can show at once', () => {
		const url = placeholderDataUrl(thumbhashOfSolid(200, 120, 40));
		expect(url).toMatch(/^data:image\/png;base64,/);
		const png = atob(url!.split(',')[1]!);
		expect(png.slice(1, 4)).toBe('PNG');
	});

	it('gives different pictures different placeholders', () => {
		expect(placeholderDataUrl(thumbhashOfSolid(10, 10, 200))).not.toBe(
			placeholderDataUrl(thumbhashOfSolid(200, 10, 10))
		);
	});

	it('shows nothing rather than failing for a missing or broken hash', () => {
		expect(placeholderDataUrl(null)).toBeNull();
		expect(placeholderDataUrl('')).toBeNull();
		expect(placeholderDataUrl('%%%')).toBeNull();
	});
});
