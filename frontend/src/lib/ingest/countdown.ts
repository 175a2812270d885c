/** Classification runs after each ingestion; give it a moment before asking for the new pictures. */
export const SETTLE_MS = 1500;
/** When the server's next ingestion is already due (late, or not announced), ask again this soon. */
export const OVERDUE_POLL_MS = 5000;
/** The slowest retry while the server cannot be reached. */
export const MAX_RETRY_MS = 10_000;

/** The stats fields the countdown reads; tolerant of a server that leaves them out. */
export interface IngestTimes {
	next_ingest_at?: string | null;
	last_ingest_at?: string | null;
	ingest_interval_secs?: number | null;
}

/**
 * When the page should next ask for new pictures (epoch ms).
 *
 * Prefers the server's `next_ingest_at`; otherwise `last_ingest_at` plus the
 * interval; otherwise the page's own refresh interval from the last fetch.
 * Never returns a time in the past, so an overdue ingestion becomes a calm poll
 * rather than a request loop.
 */
export function nextRefreshAt(
	stats: IngestTimes | null,
	refreshIntervalSecs: number,
	lastFetchAt: number,
	now: number
): number {
	const intervalMs = 1000 * (stats?.ingest_interval_secs || refreshIntervalSecs);
	const next = parseTime(stats?.next_ingest_at);
	const last = parseTime(stats?.last_ingest_at);
	let due: number;
	if (next !== null) due = next + SETTLE_MS;
	else if (last !== null) due = last + intervalMs + SETTLE_MS;
	else due = lastFetchAt + 1000 * refreshIntervalSecs;

	if (due <= now) return now + Math.min(OVERDUE_POLL_MS, 1000 * refreshIntervalSecs);
	return due;
}

/** Whole seconds left before `target`, as the header shows them (never negative). */
export function secondsUntil(target: number, now: number): number {
	return Math.max(0, Math.ceil((target - now) / 1000));
}

/** How long to wait before the `attempt`-th retry (1-based) after a failed request. */
export function retryDelayMs(attempt: number): number {
	return Math.min(MAX_RETRY_MS, 1000 * 2 ** Math.max(1, attempt));
}

function parseTime(value: string | null | undefined): number | null {
	if (!value) return null;
	const time = Date.parse(value);
	return Number.isNaN(time) ? null : time;
}

/**
 * When the collection was last updated (epoch ms), for "Updated 12 s ago":
 * the server's last ingestion when it says, else when the page last heard
 * from it (`answeredAt`), 0 when neither is known. Never in the future, so a
 * server clock a little ahead reads as "just now".
 */
export function lastUpdatedAt(stats: IngestTimes | null, answeredAt: number, now: number): number {
	const ingested = parseTime(stats?.last_ingest_at);
	const at = ingested ?? answeredAt;
	return at > 0 ? Math.min(at, now) : 0;
}
