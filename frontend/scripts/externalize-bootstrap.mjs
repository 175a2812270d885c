// SvelteKit's static output starts the app with an inline <script>. A
// Content-Security-Policy of `script-src 'self'` blocks inline scripts, so
// after each build this moves that script into a content-hashed file next to
// the other immutable assets and points the page at it. The page then needs no
// 'unsafe-inline' and no per-build hash in its CSP.
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BUILD_DIR = fileURLToPath(new URL('../build', import.meta.url));
const INLINE_SCRIPT = /<script>([\s\S]*?)<\/script>/g;
const IMPORT_SPECIFIER = /import\("(\.{1,2}\/[^"]+)"\)/g;

/**
 * Rewrites one HTML file. Returns the files to write (relative to the build dir).
 * `htmlPath` is the page's path relative to the build dir, e.g. "index.html".
 */
export function externalize(htmlPath, html) {
	const pageDir = path.posix.dirname(htmlPath);
	const outputs = [];
	const rewritten = html.replace(INLINE_SCRIPT, (_whole, body) => {
		const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
		const scriptPath = path.posix.join('_app/immutable', `bootstrap.${hash}.js`);
		const scriptDir = path.posix.dirname(scriptPath);
		// A classic script resolves import() against its own URL, not the page's.
		const moved = body.replace(IMPORT_SPECIFIER, (_match, specifier) => {
			const target = path.posix.join(pageDir, specifier);
			let relative = path.posix.relative(scriptDir, target);
			if (!relative.startsWith('.')) relative = `./${relative}`;
			return `import("${relative}")`;
		});
		outputs.push({ path: scriptPath, content: moved.trim() + '\n' });
		let src = path.posix.relative(pageDir, scriptPath);
		if (!src.startsWith('.')) src = `./${src}`;
		// `defer`: the page's HTML is drawn without waiting for this file (it starts
		// the app, which needs the modules anyway); it still runs in document order,
		// with document.currentScript set, before DOMContentLoaded.
		return `<script src="${src}" defer></script>`;
	});
	return { html: rewritten, scripts: outputs };
}

async function* htmlFiles(dir, prefix = '') {
	for (const entry of await readdir(dir, { withFileTypes: true })) {
		const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
		if (entry.isDirectory()) yield* htmlFiles(path.join(dir, entry.name), relative);
		else if (entry.name.endsWith('.html')) yield relative;
	}
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	let moved = 0;
	for await (const htmlPath of htmlFiles(BUILD_DIR)) {
		const file = path.join(BUILD_DIR, htmlPath);
		const { html, scripts } = externalize(htmlPath, await readFile(file, 'utf8'));
		for (const script of scripts) {
			await writeFile(path.join(BUILD_DIR, script.path), script.content);
			moved += 1;
		}
		await writeFile(file, html);
	}
	if (moved === 0) {
		console.error(
			'externalize-bootstrap: found no inline script; did SvelteKit change its output?'
		);
		process.exit(1);
	}
	console.log(`externalize-bootstrap: moved ${moved} inline script(s) into files`);
}
