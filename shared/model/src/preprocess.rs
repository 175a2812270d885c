//! From an upright RGB picture to the backbone's input tensor.
//!
//! This must match what the head was trained with (model/train_head.py and
//! MODEL.md): shorter side to 256 with a triangle (bilinear) filter, the
//! centre 224×224, channels first, each value scaled to (x/255 − 0.5)/0.5.

use image::RgbImage;
use image::imageops::{self, FilterType};
use tract_onnx::prelude::{Tensor, tract_ndarray};

pub const RESIZE_SHORTER_SIDE: u32 = 256;
pub const INPUT_SIDE: u32 = 224;

/// The backbone's input, [1, 3, 224, 224], ready to run.
#[derive(Clone, Debug)]
pub struct ModelInput(pub(super) Tensor);

/// Size after scaling the shorter side to 256, rounding the longer side to
/// the nearest pixel (halves up, in integers, exactly as train_head.py does).
pub fn resized_size(width: u32, height: u32) -> (u32, u32) {
    let scale = |long: u32, short: u32| -> u32 {
        let long = u64::from(long);
        let short = u64::from(short.max(1));
        let side = (long * u64::from(RESIZE_SHORTER_SIDE) * 2 + short) / (2 * short);
        u32::try_from(side)
            .unwrap_or(u32::MAX)
            .max(RESIZE_SHORTER_SIDE)
    };
    if width <= height {
        (RESIZE_SHORTER_SIDE, scale(height, width))
    } else {
        (scale(width, height), RESIZE_SHORTER_SIDE)
    }
}

/// Beyond this aspect ratio only the middle of the long side is resized: the
/// crop uses only the middle anyway, and a 40-megapixel picture 1 pixel high
/// would otherwise grow to billions of pixels when its short side becomes 256.
const MAX_ASPECT_RATIO: u32 = 4;

pub fn preprocess(image: &RgbImage) -> ModelInput {
    let (w, h) = image.dimensions();
    let (short, long) = (w.min(h).max(1), w.max(h));
    let kept = long.min(short.saturating_mul(MAX_ASPECT_RATIO));
    let middle;
    let source = if kept < long {
        let start = (long - kept) / 2;
        let (x, y, cw, ch) = if w > h {
            (start, 0, kept, h)
        } else {
            (0, start, w, kept)
        };
        middle = imageops::crop_imm(image, x, y, cw, ch).to_image();
        &middle
    } else {
        image
    };
    let (width, height) = resized_size(source.width(), source.height());
    let resized = imageops::resize(source, width, height, FilterType::Triangle);
    let left = (width - INPUT_SIDE) / 2;
    let top = (height - INPUT_SIDE) / 2;
    let side = INPUT_SIDE as usize;
    let tensor = tract_ndarray::Array4::from_shape_fn((1, 3, side, side), |(_, c, y, x)| {
        let pixel = resized.get_pixel(left + x as u32, top + y as u32);
        f32::from(pixel.0[c]) / 127.5 - 1.0
    });
    ModelInput(tensor.into())
}

impl ModelInput {
    /// A tensor of the right shape from raw values (channels first), for the
    /// export check and benchmarks that feed the backbone directly.
    pub fn from_chw(values: Vec<f32>) -> Option<Self> {
        let side = INPUT_SIDE as usize;
        let array = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), values).ok()?;
        Some(Self(array.into()))
    }

    /// The tensor itself, [1, 3, 224, 224].
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shorter_side_becomes_256_and_the_aspect_ratio_is_kept() {
        assert_eq!(resized_size(500, 375), (341, 256));
        assert_eq!(resized_size(375, 500), (256, 341));
        assert_eq!(resized_size(256, 256), (256, 256));
        // Very thin pictures still leave room for the 224 crop.
        assert_eq!(resized_size(1, 1), (256, 256));
    }

    #[test]
    fn a_one_pixel_high_panorama_is_cropped_before_it_is_enlarged() {
        let panorama = RgbImage::from_pixel(40_000, 1, image::Rgb([255, 0, 0]));
        let input = preprocess(&panorama);
        assert_eq!(input.0.shape(), &[1, 3, 224, 224]);
        let red = input.0.to_plain_array_view::<f32>().unwrap()[[0, 0, 112, 112]];
        assert!((red - 1.0).abs() < 1e-6, "red channel was {red}");
    }
}
