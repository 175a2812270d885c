//! Picture decoding on its own (fast: thousands of inputs a second). Every
//! input is refused with a `DecodeError` or comes out as an RGB picture
//! within the limits, ready for the model.
#![no_main]

use catdog::classifier::{DecodeLimits, InputGeometry, decode, preprocess};
use libfuzzer_sys::fuzz_target;

/// Smaller than production's limits so each run stays quick; the limits are
/// the same code, only the numbers differ. scripts/fuzz.sh also caps any
/// single allocation, which catches a decoder allocating past them.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1 << 20,
    max_pixels: 1 << 20,
};

fuzz_target!(|bytes: &[u8]| {
    let Ok(picture) = decode(bytes, &LIMITS) else {
        return;
    };
    let (width, height) = picture.pixels.dimensions();
    assert!(width > 0 && height > 0, "an empty picture was accepted");
    assert!(
        u64::from(width) * u64::from(height) <= LIMITS.max_pixels,
        "{width}×{height} is over the pixel limit"
    );
    let _ = preprocess(&picture.pixels, InputGeometry::LITE0);
});
