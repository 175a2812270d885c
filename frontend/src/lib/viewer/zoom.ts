/** Zoom and pan for the viewer: pure arithmetic, so it can be tested without a browser. */

export interface Size {
	width: number;
	height: number;
}

/** The most a small picture is enlarged to fit: beyond this it would only get blurrier. */
export const MAX_FIT_SCALE = 2;
/** The closest zoom, relative to the picture's natural size. */
export const MAX_NATURAL_ZOOM = 4;

/**
 * How much the picture is scaled to be shown whole in `stage`: shrunk to fit,
 * or enlarged at most {@link MAX_FIT_SCALE} times, never blurred up to the screen.
 */
export function fitScale(picture: Size, stage: Size): number {
	if (picture.width <= 0 || picture.height <= 0 || stage.width <= 0 || stage.height <= 0) return 1;
	return Math.min(stage.width / picture.width, stage.height / picture.height, MAX_FIT_SCALE);
}

/** The furthest zoom (relative to the fitted size): a few times the natural pixels, at least 2. */
export function maxZoom(fit: number): number {
	return Math.max(2, MAX_NATURAL_ZOOM / fit);
}

/** What a double-click toggles to: the picture's own pixels (1:1), or twice as close when it already is. */
export function toggleTarget(zoom: number, fit: number): number {
	if (zoom > 1.001) return 1;
	const natural = 1 / fit;
	return natural > 1.05 ? natural : 2;
}

export interface View {
	zoom: number;
	/** Offset of the picture's centre from the stage's centre, in CSS pixels. */
	x: number;
	y: number;
}

/** Keeps the zoom in range and the picture covering the stage where it can. */
export function clampView(view: View, shown: Size, stage: Size, fit: number): View {
	const zoom = Math.min(maxZoom(fit), Math.max(1, view.zoom));
	const spareX = Math.max(0, (shown.width * zoom - stage.width) / 2);
	const spareY = Math.max(0, (shown.height * zoom - stage.height) / 2);
	return {
		zoom,
		x: Math.min(spareX, Math.max(-spareX, view.x)),
		y: Math.min(spareY, Math.max(-spareY, view.y))
	};
}

/**
 * Zooms to `zoom` keeping the point under (`px`, `py`) (relative to the stage's centre) still.
 */
export function zoomAround(view: View, zoom: number, px: number, py: number): View {
	const ratio = zoom / view.zoom;
	return { zoom, x: px - (px - view.x) * ratio, y: py - (py - view.y) * ratio };
}
