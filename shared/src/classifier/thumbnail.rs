//! What the web page shows before and instead of the original: a JPEG
//! thumbnail and a ThumbHash placeholder, both made from the decoded picture
//! (so orientation is already applied).

use base64::Engine as _;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};

/// Long side of a thumbnail; smaller pictures are not enlarged.
pub const THUMBNAIL_LONG_SIDE: u32 = 480;
const THUMBNAIL_JPEG_QUALITY: u8 = 82;
/// ThumbHash encodes at most 100×100 pixels; more adds nothing.
const PLACEHOLDER_LONG_SIDE: u32 = 100;

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
#[error("could not encode the thumbnail: {0}")]
pub struct ThumbnailError(#[from] image::ImageError);

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

pub fn render(picture: &RgbImage) -> Result<RenderedThumbnail, ThumbnailError> {
    let (width, height) = fitted(picture.width(), picture.height(), THUMBNAIL_LONG_SIDE);
    let thumbnail = if (width, height) == picture.dimensions() {
        picture.clone()
    } else {
        image::imageops::resize(picture, width, height, FilterType::Triangle)
    };
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_JPEG_QUALITY).encode_image(&thumbnail)?;
    Ok(RenderedThumbnail {
        jpeg,
        width,
        height,
        placeholder: placeholder(&thumbnail),
    })
}

fn placeholder(thumbnail: &RgbImage) -> String {
    let (w, h) = fitted(thumbnail.width(), thumbnail.height(), PLACEHOLDER_LONG_SIDE);
    let small = image::imageops::resize(thumbnail, w, h, FilterType::Triangle);
    let rgba = DynamicImage::ImageRgb8(small).into_rgba8();
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, rgba.as_raw());
    base64::engine::general_purpose::STANDARD.encode(hash)
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
    }
}
