// build/404.html is served for any address the gallery does not have, at any
// depth (/a/b/c), so its links cannot be relative to where it is served like
// the other pages' are: this makes them start at the site's base path
// (svelte.config.js kit.paths.base, '' at the root).
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const PAGE = fileURLToPath(new URL('../build/404.html', import.meta.url));
const RELATIVE = /(\s(?:href|src))="\.\/([^"]*)"/g;

/** Rewrites `href="./x"` and `src="./x"` to `${base}/x`. */
export function absolutize(html, base) {
	return html.replace(RELATIVE, (_whole, attribute, rest) => `${attribute}="${base}/${rest}"`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const { default: config } = await import('../svelte.config.js');
	const base = config.kit?.paths?.base ?? '';
	const html = await readFile(PAGE, 'utf8');
	const rewritten = absolutize(html, base);
	if (rewritten.includes('="./')) {
		console.error('absolute-404: a relative link is left in build/404.html');
		process.exit(1);
	}
	await writeFile(PAGE, rewritten);
	console.log(`absolute-404: build/404.html links start at '${base}/'`);
}
