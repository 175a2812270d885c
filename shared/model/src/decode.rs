//! Turning untrusted bytes into an upright RGB picture, or a clear refusal.
//!
//! Everything here assumes the bytes are hostile: the size is checked before
//! anything is parsed, the format is recognised from the bytes (never from a
//! name or a content type), and the pixel count is read from the header and
//! checked before a single pixel buffer is allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

mod jpeg_layout;

/// The default of `MAX_IMAGE_BYTES`: 20 MiB.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// The default of `MAX_IMAGE_PIXELS`: 40 megapixels.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 40_000_000;

/// How much a picture may cost us before we refuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_IMAGE_BYTES,
            max_pixels: DEFAULT_MAX_IMAGE_PIXELS,
        }
    }
}

/// Why a picture was refused. All of these are the picture's fault: retrying
/// the same bytes gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes, more than the limit of {max} bytes")]
    TooManyBytes { size: usize, max: usize },
    #[error("not a supported image (JPEG, PNG, WebP, GIF, BMP or TIFF expected)")]
    UnsupportedFormat,
    #[error("the image claims {width}×{height} pixels, more than the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// A header that says a side is zero (or that its decoder reads so: the
    /// webp decoder reads a lossless picture 16384 wide as 0 wide).
    #[error("the image claims {width}×{height} pixels: a side of zero")]
    NoPixels { width: u32, height: u32 },
    #[error("the {format} image is truncated")]
    Truncated { format: &'static str },
    #[error("the {format} image does not decode: {source}")]
    Malformed {
        format: &'static str,
        #[source]
        source: image::ImageError,
    },
    #[error("the image would need more memory to decode than the limits allow")]
    OverMemoryLimit,
    #[error("the {format} image crashed its decoder")]
    DecoderPanicked { format: &'static str },
}

/// A decoded picture, turned upright (EXIF orientation applied) and in 8-bit RGB.
#[derive(Clone, Debug)]
pub struct DecodedImage {
    pub format: SupportedFormat,
    pub pixels: RgbImage,
}

impl DecodedImage {
    pub fn width(&self) -> u32 {
        self.pixels.width()
    }

    pub fn height(&self) -> u32 {
        self.pixels.height()
    }
}

/// The formats we accept, told by the file's first bytes; anything else is
/// refused before decoding. The same sniffer decides at ingestion.
pub use catdog_core::domain::PictureFormat as SupportedFormat;

/// The image crate's name for one of our formats.
fn image_format(format: SupportedFormat) -> ImageFormat {
    match format {
        SupportedFormat::Jpeg => ImageFormat::Jpeg,
        SupportedFormat::Png => ImageFormat::Png,
        SupportedFormat::WebP => ImageFormat::WebP,
        SupportedFormat::Gif => ImageFormat::Gif,
        SupportedFormat::Bmp => ImageFormat::Bmp,
        SupportedFormat::Tiff => ImageFormat::Tiff,
    }
}

/// Decodes `bytes` within `limits`: any supported format and colour type
/// (grayscale, palette, CMYK, alpha, 16-bit) comes out as upright 8-bit RGB.
/// A GIF gives its first frame; alpha is dropped.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooManyBytes {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = SupportedFormat::sniff(bytes).ok_or(DecodeError::UnsupportedFormat)?;
    // zune-jpeg fills a cut-off scan with grey instead of failing, so a
    // truncated JPEG would be classified as a picture with a grey half.
    if format == SupportedFormat::Jpeg && !jpeg_scan_is_complete(bytes) {
        return Err(DecodeError::Truncated {
            format: format.name(),
        });
    }
    // A decoder bug must cost one picture, not the worker that decodes it.
    std::panic::catch_unwind(|| decode_checked(bytes, format, limits)).unwrap_or(Err(
        DecodeError::DecoderPanicked {
            format: format.name(),
        },
    ))
}

fn decode_checked(
    bytes: &[u8],
    format: SupportedFormat,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeError> {
    let malformed = |source: image::ImageError| match &source {
        image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated {
                format: format.name(),
            }
        }
        _ => DecodeError::Malformed {
            format: format.name(),
            source,
        },
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    reader.limits(decoder_limits(limits));
    // Building the decoder reads only the header; nothing is allocated for
    // pixels until `from_decoder` below.
    let mut decoder = reader.into_decoder().map_err(refusal_or(&malformed))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::NoPixels { width, height });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    // A broken EXIF block is no reason to refuse a picture: it stays as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let decoded = if format == SupportedFormat::Jpeg && jpeg_layout::layout(bytes).misread_by_zune()
    {
        DynamicImage::ImageRgb8(jpeg_layout::decode_with_jpeg_decoder(bytes, limits)?)
    } else {
        DynamicImage::from_decoder(decoder).map_err(refusal_or(&malformed))?
    };
    // Converting first keeps the rotation cheap for 16-bit and alpha inputs.
    let mut upright = DynamicImage::ImageRgb8(decoded.into_rgb8());
    upright.apply_orientation(orientation);
    Ok(DecodedImage {
        format,
        pixels: upright.into_rgb8(),
    })
}

/// The decoder's own limits back up our header check, for formats whose
/// frames may be larger than the size their header announces.
fn decoder_limits(limits: &DecodeLimits) -> image::Limits {
    let mut decoder_limits = image::Limits::default();
    // 16-bit RGBA is the widest pixel we accept (8 bytes); allow one copy more.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16));
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    decoder_limits.max_image_width = Some(side);
    decoder_limits.max_image_height = Some(side);
    decoder_limits
}

fn refusal_or(
    otherwise: &dyn Fn(image::ImageError) -> DecodeError,
) -> impl Fn(image::ImageError) -> DecodeError + '_ {
    move |error| match error {
        image::ImageError::Limits(_) => DecodeError::OverMemoryLimit,
        other => otherwise(other),
    }
}

/// True when the last scan of a JPEG is followed by its end-of-image marker.
///
/// Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a
/// restart marker, so an 0xFFD9 after the last start-of-scan (0xFFDA) can only
/// be the real end. Data after it (camera trailers) is allowed.
fn jpeg_scan_is_complete(bytes: &[u8]) -> bool {
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        // No scan at all: let the decoder say what is wrong.
        return true;
    };
    bytes[last_scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_cut_inside_its_last_scan_is_incomplete() {
        let complete = [0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0x00, 3, 0xFF, 0xD9];
        assert!(jpeg_scan_is_complete(&complete));
        assert!(!jpeg_scan_is_complete(&complete[..complete.len() - 2]));
    }

    /// zune-jpeg decodes this layout into garbage (a mean error of 139 per
    /// sample); see `jpeg_layout`.
    #[test]
    fn a_jpeg_with_its_components_in_separate_scans_decodes_to_the_picture() {
        // Sides that are not multiples of the 16-pixel block, and smooth
        // colours a JPEG at quality 90 keeps within a few levels.
        let picture = RgbImage::from_fn(483, 245, |x, y| {
            image::Rgb([(x / 2) as u8, (y + 10) as u8, ((x + y) / 4 + 40) as u8])
        });
        for sampling in [
            jpeg_encoder::SamplingFactor::R_4_2_0,
            jpeg_encoder::SamplingFactor::R_4_4_0,
            jpeg_encoder::SamplingFactor::R_4_2_2,
        ] {
            let mut jpeg = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
            // Fitted Huffman tables make jpeg-encoder send one scan per component.
            encoder.set_optimized_huffman_tables(true);
            encoder.set_sampling_factor(sampling);
            encoder
                .encode(picture.as_raw(), 483, 245, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            let scans = jpeg.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
            assert_eq!(scans, 3, "{sampling:?}: expected one scan per component");

            let decoded = decode(&jpeg, &DecodeLimits::default()).unwrap();
            assert_eq!(decoded.pixels.dimensions(), (483, 245));
            let error = decoded
                .pixels
                .as_raw()
                .iter()
                .zip(picture.as_raw())
                .map(|(a, b)| f64::from(a.abs_diff(*b)))
                .sum::<f64>()
                / picture.as_raw().len() as f64;
            assert!(
                error < 2.0,
                "{sampling:?}: mean error {error:.1} per sample"
            );
        }
    }

    #[test]
    fn trailing_data_after_the_end_marker_is_allowed() {
        let with_trailer = [0xFF, 0xD8, 0xFF, 0xDA, 1, 0xFF, 0xD9, b'S', b'E', b'F'];
        assert!(jpeg_scan_is_complete(&with_trailer));
    }
}
