// Names for the shapes the page uses, taken from the generated OpenAPI types by
// route rather than by schema name, so they follow whatever the server calls
// its schemas; a change of shape still fails svelte-check.
import type { paths } from './schema';

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;

export type ImagePage = JsonOf<paths['/api/v1/images']['get']['responses'][200]>;
export type ImageItem = ImagePage['items'][number];
export type Stats = JsonOf<paths['/api/v1/stats']['get']['responses'][200]>;
export type ListImagesQuery = NonNullable<paths['/api/v1/images']['get']['parameters']['query']>;

/** The two categories the gallery shows; "other" pictures are kept out of it. */
export type GalleryCategory = 'cat' | 'dog';
export const GALLERY_CATEGORIES: readonly GalleryCategory[] = ['cat', 'dog'];
