//! From an upright RGB picture to the backbone's input tensor.
//!
//! This must match what the head was trained with (model/train_head.py and
//! MODEL.md): shorter side to 8/7 of the backbone's input side with a
//! triangle (bilinear) filter (256 for Lite0's 224, 297 for Lite2's 260), the
//! centre square the backbone reads, channels first, each value scaled to
//! (x/255 − 0.5)/0.5.

use image::RgbImage;
use image::imageops;
use tract_onnx::prelude::{Tensor, tract_ndarray};

/// The square a backbone reads, and the shorter side the picture is resized
/// to before its centre is cut out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputGeometry {
    pub side: u32,
    pub resize_shorter_side: u32,
}

impl InputGeometry {
    /// What EfficientNet-Lite0 reads (and what the reference logits are for).
    pub const LITE0: Self = Self::for_side(224);

    /// The usual ImageNet centre crop: the shorter side becomes 8/7 of the
    /// input side (halves up, in integers, as train_head.py computes it).
    pub const fn for_side(side: u32) -> Self {
        Self {
            side,
            resize_shorter_side: (side * 16 + 7) / 14,
        }
    }
}

/// The backbone's input, [1, 3, side, side], ready to run.
#[derive(Clone, Debug)]
pub struct ModelInput(pub(super) Tensor);

/// Size after scaling the shorter side to `shorter`, rounding the longer side
/// to the nearest pixel (halves up, in integers, exactly as train_head.py does).
pub fn resized_size(width: u32, height: u32, shorter: u32) -> (u32, u32) {
    let scale = |long: u32, short: u32| -> u32 {
        let long = u64::from(long);
        let short = u64::from(short.max(1));
        let side = (long * u64::from(shorter) * 2 + short) / (2 * short);
        u32::try_from(side).unwrap_or(u32::MAX).max(shorter)
    };
    if width <= height {
        (shorter, scale(height, width))
    } else {
        (scale(width, height), shorter)
    }
}

/// Beyond this aspect ratio only the middle of the long side is resized: the
/// crop uses only the middle anyway, and a 40-megapixel picture 1 pixel high
/// would otherwise grow to billions of pixels when its short side becomes 256.
const MAX_ASPECT_RATIO: u32 = 4;

pub fn preprocess(image: &RgbImage, geometry: InputGeometry) -> ModelInput {
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
    let (width, height) = resized_size(
        source.width(),
        source.height(),
        geometry.resize_shorter_side,
    );
    // It refuses only empty pictures, which decoding never gives; should
    // that change, the image crate's slower filter still answers.
    let resized = crate::resize::triangle(source, width, height).unwrap_or_else(|_| {
        imageops::resize(source, width, height, imageops::FilterType::Triangle)
    });
    let left = (width - geometry.side) / 2;
    let top = (height - geometry.side) / 2;
    let side = geometry.side as usize;
    let tensor = tract_ndarray::Array4::from_shape_fn((1, 3, side, side), |(_, c, y, x)| {
        let pixel = resized.get_pixel(left + x as u32, top + y as u32);
        f32::from(pixel.0[c]) / 127.5 - 1.0
    });
    ModelInput(tensor.into())
}

impl ModelInput {
    /// A tensor of the right shape from raw values (channels first), for the
    /// export check and benchmarks that feed the backbone directly.
    pub fn from_chw(values: Vec<f32>, side: u32) -> Option<Self> {
        let side = side as usize;
        let array = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), values).ok()?;
        Some(Self(array.into()))
    }

    /// The tensor itself, [1, 3, side, side].
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shorter_side_becomes_8_7_of_the_input_and_the_aspect_ratio_is_kept() {
        assert_eq!(InputGeometry::LITE0.resize_shorter_side, 256);
        assert_eq!(InputGeometry::for_side(240).resize_shorter_side, 274);
        assert_eq!(InputGeometry::for_side(260).resize_shorter_side, 297);
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(500, 375, 274), (365, 274));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        // Very thin pictures still leave room for the crop.
        assert_eq!(resized_size(1, 1, 274), (274, 274));
    }

    #[test]
    fn a_one_pixel_high_panorama_is_cropped_before_it_is_enlarged() {
        let panorama = RgbImage::from_pixel(40_000, 1, image::Rgb([255, 0, 0]));
        let input = preprocess(&panorama, InputGeometry::for_side(240));
        assert_eq!(input.0.shape(), &[1, 3, 240, 240]);
        let red = input.0.to_plain_array_view::<f32>().unwrap()[[0, 0, 120, 120]];
        assert!((red - 1.0).abs() < 1e-6, "red channel was {red}");
    }
}
