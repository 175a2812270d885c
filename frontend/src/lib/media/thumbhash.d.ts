// The thumbhash package ships plain JavaScript; these are the two functions we use.
declare module 'thumbhash' {
	export function thumbHashToDataURL(hash: ArrayLike<number>): string;
	export function rgbaToThumbHash(w: number, h: number, rgba: ArrayLike<number>): Uint8Array;
}
