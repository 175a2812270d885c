import type { Handle } from '@sveltejs/kit';

/**
 * The gallery's first requests start before anything else the page loads:
 * config.json (preloaded) and static/early.js, which asks for the first pages
 * and thumbnails while the app's scripts download (src/lib/api/early.ts hands
 * their answers to the app). First in <head>, ahead of the scripts, because a
 * browser opens only six connections to a server over HTTP/1.1. Only the
 * gallery's page has them; relative to it, as SvelteKit's own links are.
 * This runs when the page is prerendered at build time.
 */
const EARLY = [
	'<link rel="preload" href="./config.json" as="fetch" crossorigin="anonymous" />',
	'<script src="./early.js" async fetchpriority="high"></script>'
].join('\n\t\t');

export const handle: Handle = ({ event, resolve }) =>
	resolve(event, {
		transformPageChunk: ({ html }) =>
			html.replace('%gallery.early%', event.route.id === '/' ? EARLY : '')
	});
