import { describe, expect, it } from 'vitest';
import {
	lastUpdatedAt,
	MAX_RETRY_MS,
	nextRefreshAt,
	OVERDUE_POLL_MS,
	retryDelayMs,
	secondsUntil,
	SETTLE_MS
} from './countdown';

const NOW = Date.parse('2026-11-23T10:00:00Z');

describe('nextRefreshAt', () => {
	it('follows the next ingestion the server announces, plus time to classify', () => {
		const stats = {
			next_ingest_at: '2026-11-23T10:00:42Z',
			last_ingest_at: '2026-11-23T09:59:42Z',
			ingest_interval_secs: 60
		};
		expect(nextRefreshAt(stats, 60, NOW, NOW)).toBe(NOW + 42_000 + SETTLE_MS);
	});

	it('counts from the last ingestion when the next one is not announced', () => {
		const stats = {
			next_ingest_at: null,
			last_ingest_at: '2026-11-23T09:59:50Z',
			ingest_interval_secs: 30
		};
		expect(nextRefreshAt(stats, 60, NOW, NOW)).toBe(NOW + 20_000 + SETTLE_MS);
	});

	it("falls back to the page's refresh interval when the server says nothing", () => {
		expect(nextRefreshAt(null, 60, NOW, NOW)).toBe(NOW + 60_000);
	});

	it('polls calmly instead of looping when the ingestion is overdue', () => {
		const stats = {
			next_ingest_at: '2026-11-23T09:50:00Z',
			last_ingest_at: null,
			ingest_interval_secs: 60
		};
		expect(nextRefreshAt(stats, 60, NOW, NOW)).toBe(NOW + OVERDUE_POLL_MS);
		expect(nextRefreshAt(stats, 2, NOW, NOW)).toBe(NOW + 2000);
	});
});

describe('secondsUntil', () => {
	it('rounds up so the header never shows 0 while time is left, and stops at 0', () => {
		expect(secondsUntil(NOW + 4_100, NOW)).toBe(5);
		expect(secondsUntil(NOW + 1_000, NOW)).toBe(1);
		expect(secondsUntil(NOW, NOW)).toBe(0);
		expect(secondsUntil(NOW - 3_000, NOW)).toBe(0);
	});
});

describe('retryDelayMs', () => {
	it('grows after each failure and levels off', () => {
		const delays = [1, 2, 3, 4, 5, 9].map(retryDelayMs);
		expect(delays).toEqual([2000, 4000, 8000, MAX_RETRY_MS, MAX_RETRY_MS, MAX_RETRY_MS]);
	});
});

describe('lastUpdatedAt', () => {
	const now = Date.parse('2026-11-23T10:00:00Z');
	it("prefers the server's last ingestion, then the page's last answer", () => {
		expect(lastUpdatedAt({ last_ingest_at: '2026-11-23T09:59:48Z' }, now - 1000, now)).toBe(
			now - 12_000
		);
		expect(lastUpdatedAt({ last_ingest_at: null }, now - 1000, now)).toBe(now - 1000);
		expect(lastUpdatedAt(null, 0, now)).toBe(0);
	});
	it('never says an update happened in the future', () => {
		expect(lastUpdatedAt({ last_ingest_at: '2026-11-23T10:00:05Z' }, 0, now)).toBe(now);
	});
});
