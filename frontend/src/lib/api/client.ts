import type { ImageItem, ImagePage, ListImagesQuery, Stats } from './types';

/** Why a request failed: the server could not be reached, or it answered with an error. */
export class ApiError extends Error {
	constructor(
		message: string,
		/** `null` when no answer came back at all (network down, server stopped). */
		readonly status: number | null,
		/** The `detail` of an `application/problem+json` answer, when there was one. */
		readonly detail?: string
	) {
		super(message);
		this.name = 'ApiError';
	}

	get unreachable(): boolean {
		return this.status === null || this.status >= 500;
	}
}

export type Fetch = typeof fetch;

/**
 * The versioned read API (`/api/v1/...`), typed from the server's OpenAPI document.
 * `baseUrl` is config.json's `apiBaseUrl`: empty for the page's own origin.
 */
export class ApiClient {
	readonly #baseUrl: string;
	readonly #fetch: Fetch;

	constructor(baseUrl: string, fetchImpl: Fetch = globalThis.fetch.bind(globalThis)) {
		this.#baseUrl = baseUrl.replace(/\/+$/, '');
		this.#fetch = fetchImpl;
	}

	listImages(query: ListImagesQuery, signal?: AbortSignal): Promise<ImagePage> {
		const params = new URLSearchParams();
		if (query.category) params.set('category', query.category);
		if (query.limit !== undefined) params.set('limit', String(query.limit));
		if (query.cursor) params.set('cursor', query.cursor);
		if (query.around) params.set('around', query.around);
		const search = params.size > 0 ? `?${params}` : '';
		return this.#get<ImagePage>(`/api/v1/images${search}`, signal);
	}

	getImage(id: string, signal?: AbortSignal): Promise<ImageItem> {
		return this.#get<ImageItem>(`/api/v1/images/${encodeURIComponent(id)}`, signal);
	}

	getStats(signal?: AbortSignal): Promise<Stats> {
		return this.#get<Stats>('/api/v1/stats', signal);
	}

	async #get<T>(path: string, signal?: AbortSignal): Promise<T> {
		let response: Response;
		try {
			// The API allows a few seconds of caching; the page wants what is new right
			// after an ingestion, so it always revalidates (an unchanged list is a cheap 304).
			response = await this.#fetch(this.#baseUrl + path, {
				headers: { accept: 'application/json' },
				cache: 'no-cache',
				signal
			});
		} catch (cause) {
			if (signal?.aborted) throw cause;
			throw new ApiError(`could not reach the server for ${path}`, null);
		}
		if (!response.ok) {
			throw new ApiError(
				`${path} answered ${response.status}`,
				response.status,
				await problemDetail(response)
			);
		}
		try {
			return (await response.json()) as T;
		} catch {
			throw new ApiError(`${path} answered something that is not JSON`, response.status);
		}
	}
}

async function problemDetail(response: Response): Promise<string | undefined> {
	try {
		const body: unknown = await response.json();
		if (body && typeof body === 'object' && 'detail' in body && typeof body.detail === 'string') {
			return body.detail;
		}
	} catch {
		// A proxy's HTML error page has no detail worth showing.
	}
	return undefined;
}
