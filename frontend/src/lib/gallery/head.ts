// index.html's <head> order, set when the page is prerendered (src/hooks.server.ts).

/**
 * The gallery's first requests start before anything else the page loads:
 * config.json (preloaded) and static/early.js, which asks for the first pages
 * and thumbnails while the app's scripts download (src/lib/api/early.ts hands
 * their answers to the app); then the stylesheets, which hold up the first
 * paint; then SvelteKit's preloads of the app's scripts. In that order because
 * a browser opens only six connections to a server over HTTP/1.1, and takes
 * them in the order the page names its files. Only the gallery's page has the
 * early requests; relative to it, as SvelteKit's own links are.
 */
const EARLY = [
	'<link rel="preload" href="./config.json" as="fetch" crossorigin="anonymous" />',
	'<script src="./early.js" async fetchpriority="high"></script>'
];
const STYLESHEET = /<link [^>]*rel="stylesheet"[^>]*>\n?\s*/g;

/** Puts the early requests, then the stylesheets, where app.html says `%gallery.early%`. */
export function galleryHead(html: string): string {
	const stylesheets = (html.match(STYLESHEET) ?? []).map((link) => link.trim());
	const rest = html.replace(STYLESHEET, '');
	return rest.replace('%gallery.early%', [...EARLY, ...stylesheets].join('\n\t\t'));
}
