import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderTypes, TYPES_PATH } from '../../../scripts/openapi-types.mjs';

describe('generated API types', () => {
	it('match openapi.json (run `npm run gen:api` after the server changes its API)', async () => {
		const committed = await readFile(TYPES_PATH, 'utf8');
		expect(committed).toBe(await renderTypes());
	});
});
