// Lighthouse against a running gallery (default: `catdog serve` on port 8080),
// driving Debian's Chromium. Prints the performance and accessibility scores
// and keeps the full report in test-results/lighthouse/.
//   npm run lighthouse -- [url] [--desktop] [--runs=N]
// Lighthouse's score moves from run to run; with --runs=N it runs N times in
// turn, prints every run, and reports the run with the median performance
// score (the report kept is that run's).
// Lighthouse lives in its own package beside this file (pinned in its
// package.json and package-lock.json), so the page's `npm ci` does not install it.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse, { desktopConfig } from 'lighthouse';

const args = process.argv.slice(2);
const url = args.find((arg) => !arg.startsWith('--')) ?? 'http://127.0.0.1:8080/';
const desktop = args.includes('--desktop');
const runsArg = args.find((arg) => arg.startsWith('--runs='));
const runs = runsArg ? Number(runsArg.slice('--runs='.length)) : 1;
if (!Number.isInteger(runs) || runs < 1) {
	console.error(`lighthouse: --runs wants a whole number from 1, not ${runsArg}`);
	process.exit(2);
}
const name = desktop ? 'desktop' : 'mobile';
const outDir = fileURLToPath(new URL('../../test-results/lighthouse', import.meta.url));
const METRICS = [
	'first-contentful-paint',
	'largest-contentful-paint',
	'total-blocking-time',
	'cumulative-layout-shift',
	'speed-index'
];

/** One Lighthouse run in a fresh Chromium (a cold cache, as a first visit). */
async function runOnce() {
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
		return result;
	} finally {
		await chrome.kill();
	}
}

const score = (lhr, id) => Math.round((lhr.categories[id]?.score ?? 0) * 100);
const scores = (lhr) =>
	`performance ${score(lhr, 'performance')}, accessibility ${score(lhr, 'accessibility')}, best practices ${score(lhr, 'best-practices')}`;
const metrics = (lhr) =>
	METRICS.map((id) => `${lhr.audits[id]?.title} ${lhr.audits[id]?.displayValue}`).join(', ');

const results = [];
for (let run = 1; run <= runs; run++) {
	const result = await runOnce();
	results.push(result);
	if (runs > 1) console.log(`run ${run}/${runs}: ${scores(result.lhr)}; ${metrics(result.lhr)}`);
}

// The run with the median performance score (the lower middle one for an even count).
const ranked = [...results].sort(
	(a, b) => score(a.lhr, 'performance') - score(b.lhr, 'performance')
);
const median = ranked[Math.floor((ranked.length - 1) / 2)];
if (!median) throw new Error('no run');
const { lhr } = median;
await mkdir(outDir, { recursive: true });
await writeFile(path.join(outDir, `${name}.html`), String(median.report));
const which = runs > 1 ? `, median of ${runs} runs` : '';
console.log(`lighthouse (${name}, ${url}${which}): ${scores(lhr)}`);
for (const category of Object.values(lhr.categories)) {
	for (const ref of category.auditRefs) {
		const audit = lhr.audits[ref.id];
		if (ref.weight > 0 && audit && audit.score !== null && audit.score < 1) {
			console.log(`  below full marks in ${category.title}: ${audit.title}`);
		}
	}
}
for (const id of METRICS.slice(0, 4)) {
	console.log(`  ${lhr.audits[id]?.title}: ${lhr.audits[id]?.displayValue}`);
}
