// The page is a static shell: it is prerendered once and fetches everything it
// shows at run time, from the API named in config.json.
export const prerender = true;
export const trailingSlash = 'never';
