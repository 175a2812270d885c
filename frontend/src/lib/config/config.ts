/** The page's runtime settings, read from the `config.json` served beside index.html. */
export interface PageConfig {
	/** Prefixed to `/api/v1/...`; empty means the page's own origin. */
	apiBaseUrl: string;
	/** Where originals and thumbnails live; item URLs already carry it, kept for completeness. */
	mediaBaseUrl: string;
	/** How often new pictures are expected when the server does not say (seconds). */
	refreshIntervalSecs: number;
}

export const DEFAULT_CONFIG: PageConfig = {
	apiBaseUrl: '',
	mediaBaseUrl: '/media',
	refreshIntervalSecs: 60
};

/**
 * Accepts whatever config.json holds and keeps only well-formed values, so a
 * half-written deployment file degrades to same-origin defaults instead of a blank page.
 */
export function parseConfig(raw: unknown): PageConfig {
	if (!raw || typeof raw !== 'object') return { ...DEFAULT_CONFIG };
	const input = raw as Record<string, unknown>;
	const interval = input.refreshIntervalSecs;
	return {
		apiBaseUrl: typeof input.apiBaseUrl === 'string' ? input.apiBaseUrl : DEFAULT_CONFIG.apiBaseUrl,
		mediaBaseUrl:
			typeof input.mediaBaseUrl === 'string' ? input.mediaBaseUrl : DEFAULT_CONFIG.mediaBaseUrl,
		refreshIntervalSecs:
			typeof interval === 'number' && Number.isFinite(interval) && interval >= 1
				? interval
				: DEFAULT_CONFIG.refreshIntervalSecs
	};
}

/** Loads config.json; `null` when it cannot be fetched right now (the caller retries). */
export async function loadConfig(url: string, fetchImpl: typeof fetch): Promise<PageConfig | null> {
	try {
		const response = await fetchImpl(url, { cache: 'no-store' });
		if (response.status === 404) return { ...DEFAULT_CONFIG };
		if (!response.ok) return null;
		return parseConfig(await response.json());
	} catch {
		return null;
	}
}
