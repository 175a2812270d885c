// Lighthouse against a running gallery (default: `catdog serve` on port 8080),
// driving Debian's Chromium. Prints the performance and accessibility scores
// and keeps the full report in test-results/lighthouse/.
//   node scripts/lighthouse.mjs [url] [--desktop]
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse, { desktopConfig } from 'lighthouse';

const args = process.argv.slice(2);
const url = args.find((arg) => !arg.startsWith('--')) ?? 'http://127.0.0.1:8080/';
const desktop = args.includes('--desktop');
const outDir = fileURLToPath(new URL('../test-results/lighthouse', import.meta.url));

const chrome = await chromeLauncher.launch({
	chromePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
	chromeFlags: [
		'--headless',
		'--no-sandbox',
		'--disable-gpu',
		'--disable-quic',
		'--no-first-run',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync'
	]
});
try {
	const result = await lighthouse(
		url,
		{
			port: chrome.port,
			output: 'html',
			onlyCategories: ['performance', 'accessibility', 'best-practices']
		},
		desktop ? desktopConfig : undefined
	);
	if (!result) throw new Error('lighthouse returned nothing');
	await mkdir(outDir, { recursive: true });
	const name = desktop ? 'desktop' : 'mobile';
	await writeFile(path.join(outDir, `${name}.html`), String(result.report));
	const { categories, audits } = result.lhr;
	const score = (id) => Math.round((categories[id]?.score ?? 0) * 100);
	console.log(
		`lighthouse (${name}, ${url}): performance ${score('performance')}, accessibility ${score('accessibility')}, best practices ${score('best-practices')}`
	);
	for (const category of Object.values(categories)) {
		for (const ref of category.auditRefs) {
			const audit = audits[ref.id];
			if (ref.weight > 0 && audit && audit.score !== null && audit.score < 1) {
				console.log(`  below full marks in ${category.title}: ${audit.title}`);
			}
		}
	}
	for (const id of [
		'first-contentful-paint',
		'largest-contentful-paint',
		'total-blocking-time',
		'cumulative-layout-shift'
	]) {
		console.log(`  ${audits[id]?.title}: ${audits[id]?.displayValue}`);
	}
} finally {
	await chrome.kill();
}
