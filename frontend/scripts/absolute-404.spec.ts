import { describe, expect, it } from 'vitest';
// @ts-expect-error a plain .mjs build script, without type declarations
import { absolutize } from './absolute-404.mjs';

describe('absolutize', () => {
	it('makes the 404 page work at any depth, at the root and under a base path', () => {
		const html = '<link href="./_app/a.css" rel="stylesheet"><a class="home" href="./">Home</a>';
		expect(absolutize(html, '')).toBe(
			'<link href="/_app/a.css" rel="stylesheet"><a class="home" href="/">Home</a>'
		);
		expect(absolutize(html, '/gallery')).toBe(
			'<link href="/gallery/_app/a.css" rel="stylesheet"><a class="home" href="/gallery/">Home</a>'
		);
	});
});
