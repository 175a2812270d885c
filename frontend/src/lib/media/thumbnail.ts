import type { ImageItem } from '$lib/api/types';

export interface Picture {
	src: string;
	width: number;
	height: number;
}

/** Drawn when the API does not know a picture's size: a calm landscape box. */
const FALLBACK = { width: 480, height: 360 };

/** The original's address and size, with a stand-in size when it is unknown. */
export function original(item: ImageItem): Picture {
	return {
		src: item.url,
		width: item.width ?? item.thumbnail_width ?? FALLBACK.width,
		height: item.height ?? item.thumbnail_height ?? FALLBACK.height
	};
}

/** The thumbnail to show in the grid; the original when there is none yet. */
export function thumbnail(item: ImageItem): Picture {
	if (!item.thumbnail_url) return original(item);
	return {
		src: item.thumbnail_url,
		width: item.thumbnail_width ?? FALLBACK.width,
		height: item.thumbnail_height ?? FALLBACK.height
	};
}

/**
 * A tile's `srcset`: the thumbnail, and the original for screens dense enough
 * to want more; none when there is no thumbnail (the original is the `src`).
 */
export function tileSrcset(item: ImageItem): string | undefined {
	const thumb = thumbnail(item);
	const full = original(item);
	return thumb.src === full.src
		? undefined
		: `${thumb.src} ${thumb.width}w, ${full.src} ${full.width}w`;
}
