import { thumbHashToDataURL } from 'thumbhash';

const cache = new Map<string, string | null>();

/**
 * The blurred stand-in shown until a thumbnail arrives: the stored base64
 * ThumbHash decoded into a tiny PNG data URL. `null` for a missing or broken hash,
 * in which case the tile just shows its background colour.
 */
export function placeholderDataUrl(thumbhash: string | null | undefined): string | null {
	if (!thumbhash) return null;
	const cached = cache.get(thumbhash);
	if (cached !== undefined) return cached;
	let url: string | null;
	try {
		const binary = atob(thumbhash);
		const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
		url = bytes.length >= 5 ? thumbHashToDataURL(bytes) : null;
	} catch {
		url = null;
	}
	cache.set(thumbhash, url);
	return url;
}
