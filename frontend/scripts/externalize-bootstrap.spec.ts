import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without type declarations
import { externalize } from './externalize-bootstrap.mjs';

type Result = { html: string; scripts: { path: string; content: string }[] };
const run = externalize as (htmlPath: string, html: string) => Result;

const PAGE = `<body><div><script>
	{ const element = document.currentScript.parentElement;
	  Promise.all([import("./_app/immutable/entry/start.X.js"), import("./_app/immutable/entry/app.Y.js")]); }
</script></div></body>`;

describe('externalize', () => {
	it("leaves no inline script, so script-src 'self' suffices", () => {
		const { html, scripts } = run('index.html', PAGE);
		expect(html).not.toMatch(/<script>/);
		expect(scripts).toHaveLength(1);
		expect(html).toContain(`<script src="./${scripts[0]!.path}" defer></script>`);
	});

	it("rewrites the imports relative to the script's own location", () => {
		const { scripts } = run('index.html', PAGE);
		expect(scripts[0]!.path).toMatch(/^_app\/immutable\/bootstrap\.[0-9a-f]{10}\.js$/);
		expect(scripts[0]!.content).toContain('import("./entry/start.X.js")');
		expect(scripts[0]!.content).toContain('import("./entry/app.Y.js")');
	});

	it('handles pages in sub-folders', () => {
		const nested = PAGE.replaceAll('"./_app', '"../_app');
		const { html, scripts } = run('about/index.html', nested);
		expect(html).toContain(`src="../${scripts[0]!.path}"`);
		expect(scripts[0]!.content).toContain('import("./entry/start.X.js")');
	});
});
