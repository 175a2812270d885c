// See https://svelte.dev/docs/kit/types#app.d.ts
declare global {
	namespace App {
		/** Shallow-routing state of the gallery's history entries. */
		interface PageState {
			/** This entry was added by opening a picture from the gallery: closing goes back. */
			viewerFromGallery?: boolean;
		}
	}
}

export {};
