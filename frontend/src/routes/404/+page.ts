// build/404.html: what the servers answer for an address the gallery does not
// have. Plain HTML, no scripts: it must work from any path it is served at.
export const csr = false;
