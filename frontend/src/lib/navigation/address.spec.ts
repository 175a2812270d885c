import { describe, expect, it } from 'vitest';
import { galleryHref, readAddress } from './address';

describe('readAddress', () => {
	it('reads the tab and the picture, and falls back to All', () => {
		expect(readAddress(new URL('https://x.test/?tab=dog&image=abc'))).toEqual({
			tab: 'dog',
			image: 'abc'
		});
		expect(readAddress(new URL('https://x.test/?tab=cow'))).toEqual({ tab: 'all', image: null });
		expect(readAddress(new URL('https://x.test/?tab=other'))).toEqual({
			tab: 'other',
			image: null
		});
		expect(readAddress(new URL('https://x.test/?image='))).toEqual({ tab: 'all', image: null });
	});
});

describe('galleryHref', () => {
	it('keeps a reloadable address at the root and under a base path', () => {
		expect(galleryHref('', { tab: 'all', image: null })).toBe('/');
		expect(galleryHref('/gallery', { tab: 'all', image: null })).toBe('/gallery/');
		expect(galleryHref('/gallery', { tab: 'cat', image: null })).toBe('/gallery/?tab=cat');
		expect(galleryHref('/gallery', { tab: 'dog', image: 'a b' })).toBe(
			'/gallery/?tab=dog&image=a+b'
		);
	});

	it('keeps the document path when the page was opened as index.html', () => {
		expect(galleryHref('/bucket', { tab: 'cat', image: null }, '/bucket/index.html')).toBe(
			'/bucket/index.html?tab=cat'
		);
		expect(galleryHref('/bucket', { tab: 'all', image: null }, '/bucket/')).toBe('/bucket/');
	});

	it('round-trips through readAddress', () => {
		const address = { tab: 'cat', image: '0192-x' } as const;
		expect(readAddress(new URL(galleryHref('/g', address), 'https://x.test'))).toEqual(address);
	});
});
