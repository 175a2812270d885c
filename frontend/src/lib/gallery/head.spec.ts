import { describe, expect, it } from 'vitest';
import { galleryHead } from './head';

const PAGE = `<head>
		<meta charset="utf-8" />
		%gallery.early%
		<link rel="icon" href="./favicon.svg" type="image/svg+xml" />
		<link href="./_app/immutable/entry/start.A.js" rel="modulepreload">
		<link href="./_app/immutable/nodes/2.B.js" rel="modulepreload">
		<title>CatDog Gallery</title>
		<link href="./_app/immutable/assets/0.C.css" rel="stylesheet">
		<link href="./_app/immutable/assets/2.D.css" rel="stylesheet">
	</head>`;

describe('galleryHead', () => {
	const head = galleryHead(PAGE);
	const order = (needle: string) => head.indexOf(needle);

	it('asks for config.json and early.js first, then the stylesheets, then the scripts', () => {
		expect(order('config.json')).toBeGreaterThan(order('<meta charset'));
		expect(order('early.js')).toBeGreaterThan(order('config.json'));
		expect(order('0.C.css')).toBeGreaterThan(order('early.js'));
		expect(order('2.D.css')).toBeGreaterThan(order('0.C.css'));
		expect(order('start.A.js')).toBeGreaterThan(order('2.D.css'));
	});

	it('keeps every link once, and no placeholder', () => {
		for (const file of ['config.json', 'early.js', '0.C.css', '2.D.css', 'start.A.js', '2.B.js']) {
			expect(head.split(file)).toHaveLength(2);
		}
		expect(head).not.toContain('%gallery.early%');
		expect(head).toContain(
			'<link rel="preload" href="./config.json" as="fetch" crossorigin="anonymous" />'
		);
		expect(head).toContain('<script src="./early.js" async fetchpriority="high"></script>');
	});
});
