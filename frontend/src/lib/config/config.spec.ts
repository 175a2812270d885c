import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig, parseConfig } from './config';

describe('parseConfig', () => {
	it('reads the contract fields', () => {
		expect(
			parseConfig({
				apiBaseUrl: 'https://api.test',
				mediaBaseUrl: 'https://media.test',
				refreshIntervalSecs: 30
			})
		).toEqual({
			apiBaseUrl: 'https://api.test',
			mediaBaseUrl: 'https://media.test',
			refreshIntervalSecs: 30
		});
	});

	it('falls back to same-origin defaults for missing or malformed values', () => {
		expect(parseConfig({ apiBaseUrl: 7, refreshIntervalSecs: -1 })).toEqual(DEFAULT_CONFIG);
		expect(parseConfig('nonsense')).toEqual(DEFAULT_CONFIG);
	});
});

describe('loadConfig', () => {
	it('returns null when the file cannot be fetched, so the page retries', async () => {
		expect(
			await loadConfig('/config.json', async () => {
				throw new TypeError('offline');
			})
		).toBeNull();
		expect(
			await loadConfig('/config.json', async () => new Response('', { status: 502 }))
		).toBeNull();
	});

	it('uses the defaults when there is no config.json at all', async () => {
		expect(await loadConfig('/config.json', async () => new Response('', { status: 404 }))).toEqual(
			DEFAULT_CONFIG
		);
	});
});
