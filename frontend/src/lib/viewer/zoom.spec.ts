import { describe, expect, it } from 'vitest';
import { clampView, fitScale, maxZoom, toggleTarget, zoomAround } from './zoom';

const STAGE = { width: 1000, height: 800 };

describe('fitScale', () => {
	it('shrinks large pictures to fit', () => {
		expect(fitScale({ width: 4000, height: 2000 }, STAGE)).toBe(0.25);
	});
	it('enlarges small pictures at most twice', () => {
		expect(fitScale({ width: 100, height: 100 }, STAGE)).toBe(2);
		expect(fitScale({ width: 600, height: 500 }, STAGE)).toBe(1.6);
	});
	it('is 1 for unknown sizes', () => {
		expect(fitScale({ width: 0, height: 10 }, STAGE)).toBe(1);
	});
});

describe('toggleTarget', () => {
	it('goes to the natural size, or twice as close when it is already shown so', () => {
		expect(toggleTarget(1, 0.25)).toBe(4);
		expect(toggleTarget(1, 1)).toBe(2);
		expect(toggleTarget(1, 2)).toBe(2);
		expect(toggleTarget(4, 0.25)).toBe(1);
	});
});

describe('clampView', () => {
	it('keeps the zoom in range and the picture over the stage', () => {
		const shown = { width: 1000, height: 500 };
		expect(clampView({ zoom: 0.5, x: 30, y: 30 }, shown, STAGE, 0.25)).toEqual({
			zoom: 1,
			x: 0,
			y: 0
		});
		expect(clampView({ zoom: 2, x: 900, y: -900 }, shown, STAGE, 0.25)).toEqual({
			zoom: 2,
			x: 500,
			y: -100
		});
		expect(clampView({ zoom: 100, x: 0, y: 0 }, shown, STAGE, 0.25).zoom).toBe(maxZoom(0.25));
	});
});

describe('zoomAround', () => {
	it('keeps the point under the pointer still', () => {
		const view = zoomAround({ zoom: 1, x: 0, y: 0 }, 2, 100, 50);
		// The point at (100, 50) was 100 px right of the picture's centre; now it is 200 px right.
		expect(view).toEqual({ zoom: 2, x: -100, y: -50 });
		expect(100 - view.x).toBe(2 * 100);
	});
});
