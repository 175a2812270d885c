// The gallery's first requests, started while the page's scripts are still
// downloading: config.json, then the stats and the first pages the page is
// about to ask for, then a preload of the first thumbnails on screen. Without
// it, nothing is asked for until the app has loaded and started, and the
// pictures wait for four round trips in a row on a slow phone.
//
// A plain script with no imports (index.html loads it with `async`). The page
// takes these answers through src/lib/api/early.ts, each once, for the same
// addresses; it asks by itself for anything not here, so if this script is
// missing or fails, the page only starts a little later. What it asks for
// must stay what the page asks for first (src/routes/+page.svelte, Gallery):
// src/lib/api/early.spec.ts checks it against the page's own code.
(function () {
	'use strict';
	if (window.__catdogEarly) return;
	/** @type {Map<string, Promise<Response>>} */
	var early = new Map();
	window.__catdogEarly = early;

	var PAGE_SIZE = 24; // src/lib/gallery/feed.svelte.ts
	var WIDE_QUERY = '(min-width: 56rem)'; // src/lib/gallery/layout.ts
	var TILE_SIZES = // src/lib/gallery/layout.ts
		'(min-width: 90rem) 13rem, (min-width: 56rem) 21vw, (min-width: 30rem) 30vw, 46vw';
	/** Thumbnails preloaded per list shown: its eager tiles (EAGER_TILES, src/lib/gallery/layout.ts). */
	var PRELOADED_PER_LIST = 2;

	var script = document.currentScript;
	var here = script && script.src ? script.src : location.href;
	var configUrl = new URL('config.json', here).href;

	/** The same request the page would make, remembered under its address. */
	function ask(url, init) {
		var response = fetch(url, init);
		early.set(url, response);
		// The page reports failures; an unused rejection is not an error here.
		response.catch(function () {});
		return response;
	}

	var tab = new URLSearchParams(location.search).get('tab');
	if (['all', 'cat', 'dog', 'other'].indexOf(tab) < 0) tab = 'all';
	var wide = window.matchMedia(WIDE_QUERY).matches;

	ask(configUrl, { cache: 'no-store' })
		.then(function (response) {
			if (response.status === 404) return {};
			return response.ok ? response.clone().json() : null;
		})
		.then(function (config) {
			if (!config) return;
			var base = typeof config.apiBaseUrl === 'string' ? config.apiBaseUrl : '';
			base = base.replace(/\/+$/, '');
			var api = function (path) {
				return ask(new URL(base + path, location.href).href, {
					headers: { accept: 'application/json' },
					cache: 'no-cache'
				});
			};
			var list = function (category) {
				var query = new URLSearchParams();
				if (category) query.set('category', category);
				query.set('limit', String(PAGE_SIZE));
				return api('/api/v1/images?' + query);
			};
			api('/api/v1/stats');
			var lists = { cat: list('cat'), dog: list('dog') };
			// A phone's All or Refused tab has a list of its own.
			if (!wide && tab === 'all') lists.all = list(null);
			if (!wide && tab === 'other') lists.other = list('other');
			var shown = wide ? ['cat', 'dog'] : [tab];
			shown.forEach(function (name) {
				lists[name]
					.then(function (response) {
						return response.ok ? response.clone().json() : null;
					})
					.then(function (page) {
						if (page && Array.isArray(page.items)) preload(page.items);
					})
					.catch(function () {});
			});
		})
		.catch(function () {});

	/** The first thumbnails, as the tiles will ask for them (same srcset and sizes). */
	function preload(items) {
		items.slice(0, PRELOADED_PER_LIST).forEach(function (item) {
			var srcset = tileSrcset(item);
			var link = document.createElement('link');
			link.rel = 'preload';
			link.as = 'image';
			link.href = item.thumbnail_url || item.url;
			if (srcset) {
				link.setAttribute('imagesrcset', srcset);
				link.setAttribute('imagesizes', TILE_SIZES);
			}
			link.setAttribute('fetchpriority', 'high');
			document.head.appendChild(link);
		});
	}

	/** src/lib/components/gallery/ImageTile.svelte's srcset, from src/lib/media/thumbnail.ts. */
	function tileSrcset(item) {
		if (!item.thumbnail_url) return null;
		var thumbWidth = item.thumbnail_width || 480;
		var fullWidth = item.width || item.thumbnail_width || 480;
		return item.thumbnail_url + ' ' + thumbWidth + 'w, ' + item.url + ' ' + fullWidth + 'w';
	}
})();
