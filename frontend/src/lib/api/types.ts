// Names for the shapes the page uses, taken from the generated OpenAPI types by
// route rather than by schema name, so they follow whatever the server calls
// its schemas; a change of shape still fails svelte-check.
import type { paths } from './schema';

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;

// A page says where it sits in its listing (`position`, `total`, `prev_cursor`)
// and the query takes `around`: both are in the generated schema. The lists
// still read `position` and `total` defensively (a server older than its
// OpenAPI document, mid-deployment, leaves them out), see Feed and AroundWindow.
export type ImagePage = JsonOf<paths['/api/v1/images']['get']['responses'][200]>;
export type ImageItem = ImagePage['items'][number];
export type Stats = JsonOf<paths['/api/v1/stats']['get']['responses'][200]>;
export type ListImagesQuery = NonNullable<paths['/api/v1/images']['get']['parameters']['query']>;

/** The two categories the gallery shows; "other" pictures are kept out of it. */
export type GalleryCategory = 'cat' | 'dog';
/** A listing the page can ask for: cats, dogs, or the refused pictures ("neither"). */
export type ListingCategory = GalleryCategory | 'other';
export const GALLERY_CATEGORIES: readonly GalleryCategory[] = ['cat', 'dog'];
