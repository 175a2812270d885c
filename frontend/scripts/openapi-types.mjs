// Turns frontend/openapi.json into TypeScript types for the API client.
// `npm run gen:api` writes them; src/lib/api/schema.spec.ts fails when the
// committed file no longer matches openapi.json, so a server change that the
// page has not caught up with cannot slip through.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

export const SPEC_PATH = fileURLToPath(new URL('../openapi.json', import.meta.url));
export const TYPES_PATH = fileURLToPath(new URL('../src/lib/api/schema.d.ts', import.meta.url));

/** The types file's exact text for the OpenAPI document at SPEC_PATH. */
export async function renderTypes() {
	const spec = JSON.parse(await readFile(SPEC_PATH, 'utf8'));
	const ast = await openapiTS(spec);
	return COMMENT_HEADER + astToString(ast);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	await writeFile(TYPES_PATH, await renderTypes());
	console.log(`wrote ${TYPES_PATH}`);
}
