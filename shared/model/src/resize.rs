//! Resizing a picture with a triangle (bilinear) filter, the one resize the
//! classifier's input and the thumbnail share. `fast_image_resize` follows
//! Pillow's BILINEAR (the filter model/train_head.py trains with) and picks
//! SIMD instructions on the CPU it runs on.

use fast_image_resize::{FilterType, ResizeAlg, ResizeError, ResizeOptions, Resizer};
use image::RgbImage;

/// `source` resized to `width` × `height`, the filter widened when shrinking.
/// Fails only for an empty picture or an empty size.
pub(crate) fn triangle(
    source: &RgbImage,
    width: u32,
    height: u32,
) -> Result<RgbImage, ResizeError> {
    let mut resized = RgbImage::new(width, height);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(source, &mut resized, &options)?;
    Ok(resized)
}
