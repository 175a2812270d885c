// Measures the JavaScript a visitor downloads for the first page: every script
// index.html loads or preloads, plus everything those import statically or
// through the bootstrap's import() calls, each counted once, gzipped at level 9.
// Fails when the total is above the budget.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const BUDGET_BYTES = 60 * 1024;
const BUILD_DIR = fileURLToPath(new URL('../build', import.meta.url));

const HTML_REFERENCES = /<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+\.js)"/g;
const JS_IMPORTS = /(?:\bimport\s*\(\s*|\bfrom\s*|\bimport\s*)["'](\.{1,2}\/[^"']+\.js)["']/g;

/** The first page's scripts (paths inside the build) with their gzipped sizes. */
export function firstPageScripts(buildDir = BUILD_DIR, page = 'index.html') {
	const html = readFileSync(path.join(buildDir, page), 'utf8');
	const pending = [...html.matchAll(HTML_REFERENCES)].map((match) =>
		path.posix.normalize(path.posix.join(path.posix.dirname(page), match[1]))
	);
	const sizes = new Map();
	while (pending.length > 0) {
		const file = pending.pop();
		if (sizes.has(file)) continue;
		const source = readFileSync(path.join(buildDir, file));
		sizes.set(file, gzipSync(source, { level: 9 }).length);
		for (const match of source.toString('utf8').matchAll(JS_IMPORTS)) {
			pending.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), match[1])));
		}
	}
	return sizes;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	if (!existsSync(path.join(BUILD_DIR, 'index.html'))) {
		console.error('js-budget: no build/index.html; run `npm run build` first');
		process.exit(1);
	}
	const sizes = firstPageScripts();
	const total = [...sizes.values()].reduce((sum, size) => sum + size, 0);
	for (const [file, size] of [...sizes].sort((a, b) => b[1] - a[1])) {
		console.log(`${(size / 1024).toFixed(1).padStart(7)} KB  ${file}`);
	}
	const verdict = total <= BUDGET_BYTES ? 'within' : 'OVER';
	console.log(
		`js-budget: first page JavaScript ${(total / 1024).toFixed(1)} KB gzipped in ${sizes.size} files, ${verdict} the ${BUDGET_BYTES / 1024} KB budget`
	);
	if (total > BUDGET_BYTES) process.exit(1);
}
