import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		// Plain static files: served from a Cloud Storage bucket in the cloud and by
		// `catdog serve` locally. config.json is written beside index.html at deploy time.
		adapter: adapter({ pages: 'build', assets: 'build', fallback: undefined, strict: true }),
		// Keep the built files free of any build-time environment: one build runs anywhere.
		env: { publicPrefix: 'NEVER_BAKED_IN_' },
		// The path the page is served under: '' locally and behind a domain,
		// '/BUCKET' on storage.googleapis.com (Cloud Build passes BASE_PATH).
		paths: { base: process.env.BASE_PATH ?? '' },
		prerender: {
			// config.json is written beside index.html at deploy time (the page preloads it).
			handleHttpError: ({ path, status, message }) => {
				if (status === 404 && path.endsWith('/config.json')) return;
				throw new Error(message);
			}
		}
	}
};

export default config;
