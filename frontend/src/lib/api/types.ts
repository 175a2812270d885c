// Names for the shapes the page uses, taken from the generated OpenAPI types by
// route rather than by schema name, so they follow whatever the server calls
// its schemas; a change of shape still fails svelte-check.
import type { paths } from './schema';

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;

/**
 * Where a page sits in its listing: `prev_cursor` (the newer page before
 * `items[0]`), `position` (1-based, of `items[0]`) and `total`. Optional
 * here, so the page still works with a server that does not send them.
 */
export interface PagePlace {
	prev_cursor?: string | null;
	position?: number;
	total?: number;
}

export type ImagePage = JsonOf<paths['/api/v1/images']['get']['responses'][200]> & PagePlace;
export type ImageItem = ImagePage['items'][number];
export type Stats = JsonOf<paths['/api/v1/stats']['get']['responses'][200]>;
export type ListImagesQuery = NonNullable<paths['/api/v1/images']['get']['parameters']['query']> & {
	/** A picture's id: the page that holds it, with its neighbours both ways. */
	around?: string;
};

/** The two categories the gallery shows; "other" pictures are kept out of it. */
export type GalleryCategory = 'cat' | 'dog';
/** A listing the page can ask for: cats, dogs, or the refused pictures ("neither"). */
export type ListingCategory = GalleryCategory | 'other';
export const GALLERY_CATEGORIES: readonly GalleryCategory[] = ['cat', 'dog'];
