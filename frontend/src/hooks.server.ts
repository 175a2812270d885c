import type { Handle } from '@sveltejs/kit';
import { galleryHead } from '$lib/gallery/head';

// The gallery's page gets its early requests and its stylesheets first in
// <head> (src/lib/gallery/head.ts); other pages (404.html) neither.
export const handle: Handle = ({ event, resolve }) =>
	resolve(event, {
		transformPageChunk: ({ html }) =>
			event.route.id === '/' ? galleryHead(html) : html.replace('%gallery.early%', '')
	});
