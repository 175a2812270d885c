// The answers static/early.js asked for before the app had loaded, handed to
// the app's own requests for the same addresses, each once.

declare global {
	interface Window {
		/** Set by static/early.js: request address → its response, not taken yet. */
		__catdogEarly?: Map<string, Promise<Response>>;
	}
}

type EarlySource = () => Map<string, Promise<Response>> | undefined;

const pageEarly: EarlySource = () =>
	typeof window === 'undefined' ? undefined : window.__catdogEarly;

/**
 * A fetch that first takes the response static/early.js already asked for
 * the same address (a GET, resolved against the page's address), else asks
 * the network. Each early response is handed out once: a later request for
 * the same address (the next refresh) goes to the network.
 */
export function withEarlyResponses(
	fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis),
	source: EarlySource = pageEarly,
	pageUrl: () => string = () => location.href
): typeof fetch {
	return (input, init) => {
		const early = source();
		const method = init?.method?.toUpperCase() ?? 'GET';
		if (early && early.size > 0 && typeof input === 'string' && method === 'GET') {
			const url = new URL(input, pageUrl()).href;
			const response = early.get(url);
			if (response) {
				early.delete(url);
				return response;
			}
		}
		return fetchImpl(input, init);
	};
}
