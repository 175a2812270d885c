/**
 * What the address says: the phone tab and the open picture. `other` is the
 * view of refused pictures, shown only when asked for (a tab on a phone, a
 * third column on a wide screen).
 */
export type TabName = 'all' | 'cat' | 'dog' | 'other';

export interface GalleryAddress {
	tab: TabName;
	/** The picture open in the viewer (`?image=ID`), or null. */
	image: string | null;
}

const TABS: readonly TabName[] = ['all', 'cat', 'dog', 'other'];

/** Reads `?tab=` and `?image=`; unknown tabs are the All tab. */
export function readAddress(url: URL): GalleryAddress {
	const tab = url.searchParams.get('tab');
	const image = url.searchParams.get('image');
	return {
		tab: TABS.includes(tab as TabName) ? (tab as TabName) : 'all',
		image: image ? image : null
	};
}

/**
 * The gallery's address under `base` (SvelteKit's base path, '' at the root):
 * `${base}/` so a reload finds index.html, plus the kept query. Where the page
 * was opened as `…/index.html` (a bucket served without a domain answers
 * only that, not `…/`), `current`, the document's own path, is kept instead.
 * The All tab is the default and is left out.
 */
export function galleryHref(base: string, address: GalleryAddress, current = ''): string {
	const params = new URLSearchParams();
	if (address.tab !== 'all') params.set('tab', address.tab);
	if (address.image) params.set('image', address.image);
	const query = params.toString();
	const path = current.endsWith('/index.html') ? current : `${base}/`;
	return `${path}${query ? `?${query}` : ''}`;
}
