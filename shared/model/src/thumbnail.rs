//! What the web page shows before and instead of the original: a JPEG
//! thumbnail and a ThumbHash placeholder, both made from the decoded picture
//! (so orientation is already applied).
//!
//! Every picture pays for this beside its classification, so the resize and
//! the encoder are SIMD ones (`crate::resize`, `jpeg-encoder`), which pick
//! their instructions on the CPU they run on.

use base64::Engine as _;
use image::{DynamicImage, RgbImage};

/// Long side of a thumbnail; smaller pictures are not enlarged.
pub const THUMBNAIL_LONG_SIDE: u32 = 480;
const THUMBNAIL_JPEG_QUALITY: u8 = 82;
/// ThumbHash keeps at most 7 frequencies a side and walks every input pixel
/// for each of them: 32 pixels a side carry all it keeps (decoded, the
/// placeholders differ from those of a 100-pixel input by under 1/255 on
/// average) at a tenth of the cost.
const PLACEHOLDER_LONG_SIDE: u32 = 32;

/// A JPEG thumbnail and its placeholder.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedThumbnail {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// A ThumbHash, base64 (standard alphabet, padded).
    pub placeholder: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("could not resize the picture for its thumbnail: {0}")]
    Resize(#[from] fast_image_resize::ResizeError),
    #[error("could not encode the thumbnail: {0}")]
    Encode(#[from] jpeg_encoder::EncodingError),
}

/// Size that fits `long_side`, keeping the aspect ratio; never larger than
/// the picture and never zero.
fn fitted(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_side {
        return (width.max(1), height.max(1));
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(long_side) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).unwrap_or(long_side).max(1)
    };
    (scale(width), scale(height))
}

/// `picture` scaled down to `width` × `height`.
///
/// Shrinking to half or less, each output pixel is the plain average of the
/// source pixels it covers (`imageops::thumbnail`, integer arithmetic): as
/// good as a triangle filter there, and cheap on the large photos sources
/// send. Closer to the original size that average degrades to dropping
/// columns, so a triangle (bilinear) filter is used.
fn shrink(picture: &RgbImage, width: u32, height: u32) -> Result<RgbImage, ThumbnailError> {
    if (width, height) == picture.dimensions() {
        Ok(picture.clone())
    } else if picture.width() >= 2 * width && picture.height() >= 2 * height {
        Ok(image::imageops::thumbnail(picture, width, height))
    } else {
        Ok(crate::resize::triangle(picture, width, height)?)
    }
}

pub fn render(picture: &RgbImage) -> Result<RenderedThumbnail, ThumbnailError> {
    let (width, height) = fitted(picture.width(), picture.height(), THUMBNAIL_LONG_SIDE);
    let thumbnail = shrink(picture, width, height)?;
    let mut jpeg = Vec::new();
    // `fitted` keeps both sides within THUMBNAIL_LONG_SIDE, far below u16's limit.
    let side = |s: u32| u16::try_from(s).unwrap_or(u16::MAX);
    jpeg_encoder::Encoder::new(&mut jpeg, THUMBNAIL_JPEG_QUALITY).encode(
        thumbnail.as_raw(),
        side(width),
        side(height),
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(RenderedThumbnail {
        jpeg,
        width,
        height,
        placeholder: placeholder(&thumbnail)?,
    })
}

fn placeholder(thumbnail: &RgbImage) -> Result<String, ThumbnailError> {
    let (w, h) = fitted(thumbnail.width(), thumbnail.height(), PLACEHOLDER_LONG_SIDE);
    let small = shrink(thumbnail, w, h)?;
    let rgba = DynamicImage::ImageRgb8(small).into_rgba8();
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, rgba.as_raw());
    Ok(base64::engine::general_purpose::STANDARD.encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_480_on_the_long_side_and_keep_the_aspect_ratio() {
        assert_eq!(fitted(4000, 3000, 480), (480, 360));
        assert_eq!(fitted(3000, 4000, 480), (360, 480));
        assert_eq!(fitted(300, 200, 480), (300, 200));
        assert_eq!(fitted(10_000, 1, 480), (480, 1));
    }

    #[test]
    fn shrinking_keeps_the_colours_and_the_picture_in_place() {
        // Left half red, right half blue, a 1-pixel green line in the middle row.
        let picture = RgbImage::from_fn(4000, 3000, |x, y| match (x, y) {
            (_, 1500) => image::Rgb([0, 255, 0]),
            (x, _) if x < 2000 => image::Rgb([255, 0, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        for (w, h) in [(480, 360), (2500, 1875), (100, 75)] {
            let small = shrink(&picture, w, h).unwrap();
            assert_eq!(small.dimensions(), (w, h));
            assert_eq!(
                small.get_pixel(w / 4, h / 4),
                &image::Rgb([255, 0, 0]),
                "{w}x{h}"
            );
            assert_eq!(
                small.get_pixel(3 * w / 4, h / 4),
                &image::Rgb([0, 0, 255]),
                "{w}x{h}"
            );
            // The thin line is averaged in, not dropped or smeared far.
            let column = |y: u32| small.get_pixel(w / 4, y)[1];
            let greenest = (0..h).max_by_key(|&y| column(y)).unwrap();
            assert!(greenest.abs_diff(h / 2) <= 1, "{w}x{h}: line at {greenest}");
            assert!(column(greenest) > 0, "{w}x{h}");
        }
    }

    #[test]
    fn a_thumbnail_is_a_jpeg_with_a_placeholder_of_the_same_shape() {
        let picture = RgbImage::from_fn(1000, 500, |x, _| image::Rgb([(x % 256) as u8, 90, 200]));
        let thumb = render(&picture).unwrap();
        assert_eq!((thumb.width, thumb.height), (480, 240));
        let decoded = image::load_from_memory(&thumb.jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (480, 240));
        let hash = base64::engine::general_purpose::STANDARD
            .decode(&thumb.placeholder)
            .unwrap();
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
        assert!((ratio - 2.0).abs() < 0.3, "aspect ratio {ratio}");
        // The JPEG shows the picture: same colours, same place (the
        // gradient runs left to right), within what compression changes.
        let decoded = decoded.into_rgb8();
        let expected = shrink(&picture, 480, 240).unwrap();
        let total: u64 = decoded
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = total as f64 / expected.as_raw().len() as f64;
        assert!(mean < 4.0, "mean difference {mean:.1} per sample");
    }
}
