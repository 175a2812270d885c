// Runs the browser tests and ends with one summary line ("N passed, N failed").
// Exits non-zero when any test fails. When Chromium, the built page or the
// server binary is missing, it says so and skips, except with CI=true, where
// a missing piece is a failure.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_BIN } from './browser.mjs';
import { catdogBinary, DEV_IMAGES, WEB_DIR } from './catdog-server.mjs';

const inCi = process.env.CI === 'true' || process.env.CI === '1';
const here = path.dirname(fileURLToPath(import.meta.url));

const missing = [];
if (!existsSync(CHROMIUM_BIN))
	missing.push(`Chromium at ${CHROMIUM_BIN} (run scripts/setup-chromium.sh as root)`);
if (!existsSync(path.join(WEB_DIR, 'index.html')))
	missing.push(`the built page in ${WEB_DIR} (run npm run build)`);
if (!existsSync(DEV_IMAGES))
	missing.push(`the dev photos at ${DEV_IMAGES} (../shared beside the repository)`);
if (!existsSync(catdogBinary())) {
	missing.push(
		`the server binary at ${catdogBinary()} (cargo build -p catdog-cli, or set CATDOG_BIN)`
	);
}
if (missing.length > 0) {
	for (const thing of missing) console.error(`e2e: missing ${thing}`);
	if (inCi) {
		console.error('e2e: CI=true, so a missing piece is a failure');
		console.log('e2e: 0 passed, 1 failed');
		process.exit(1);
	}
	console.log('e2e: 0 passed, 0 failed, 1 skipped (see above for what is missing)');
	process.exit(0);
}

let passed = 0;
let failed = 0;
let skipped = 0;
const stream = run({
	files: [path.join(here, 'gallery.e2e.mjs')],
	concurrency: false,
	timeout: 10 * 60_000,
	// E2E_ONLY="banner" runs only the tests whose names match, while working on one.
	...(process.env.E2E_ONLY ? { testNamePatterns: [new RegExp(process.env.E2E_ONLY, 'i')] } : {})
});
stream.on('test:pass', (event) => {
	if (event.details?.type === 'suite') return;
	if (event.skip || event.todo) skipped += 1;
	else passed += 1;
});
stream.on('test:fail', (event) => {
	if (event.details?.type !== 'suite') failed += 1;
});
stream.compose(spec).pipe(process.stdout);
await new Promise((resolve) => stream.once('end', resolve));
// Let the reporter flush before the closing line.
await new Promise((resolve) => setImmediate(resolve));
const total = passed + failed;
console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || total === 0 ? 1 : 0);
