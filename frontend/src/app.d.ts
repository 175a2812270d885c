// See https://svelte.dev/docs/kit/types#app.d.ts
declare global {
	namespace App {
		/** Shallow-routing state: the picture open in the viewer, if any. */
		interface PageState {
			viewerImageId?: string;
		}
	}
}

export {};
