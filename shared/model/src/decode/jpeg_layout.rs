//! The one JPEG layout the image crate's decoder (zune-jpeg 0.5.15) reads
//! wrongly, and a second decoder for it.
//!
//! A sequential JPEG may send its components in separate scans, one after
//! another, instead of interleaved in one. When a component is also
//! subsampled vertically (4:2:0, the usual colour subsampling), zune-jpeg
//! decodes such a file without an error into garbage: a 480×240 test
//! picture came out with a mean error of 139/255 per sample where
//! libjpeg-turbo's error is under 0.1. `jpeg-encoder` writes this layout
//! whenever it fits its Huffman tables to the picture, so real uploads can
//! have it. image-rs's older decoder, `jpeg-decoder`, reads it correctly and
//! decodes these files; every other JPEG stays with zune-jpeg, which is
//! faster.

use image::error::{DecodingError, ImageFormatHint};
use image::{ImageError, ImageFormat, RgbImage};

use super::{DecodeError, DecodeLimits};

/// What [`layout`] reads from the markers before the pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Layout {
    /// A baseline or extended sequential frame with Huffman coding
    /// (SOF0 or SOF1).
    pub sequential: bool,
    /// The frame's component count.
    pub components: u8,
    /// Whether any component has a vertical sampling factor above 1.
    pub subsampled_vertically: bool,
    /// The fewest components any scan holds.
    pub fewest_in_a_scan: Option<u8>,
}

impl Layout {
    /// Whether zune-jpeg would decode this file into garbage.
    pub fn misread_by_zune(&self) -> bool {
        self.sequential
            && self.subsampled_vertically
            && self
                .fewest_in_a_scan
                .is_some_and(|fewest| fewest < self.components)
    }
}

/// Walks the markers of `bytes`, a JPEG, up to its end or to the first thing
/// that is not a marker where one should be (the decoder will say what is
/// wrong with it). Reads no pixel data; skips each scan's entropy-coded
/// bytes by their markers.
pub(super) fn layout(bytes: &[u8]) -> Layout {
    let mut found = Layout::default();
    // After the start-of-image marker.
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may precede any marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return found;
        };
        at += 2;
        // Markers without a segment: restarts, TEM, a second SOI; and the end.
        match marker {
            0xD9 => return found,
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(length) = bytes
            .get(at..at + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return found;
        };
        let Some(segment) = bytes.get(at + 2..at + length.max(2)) else {
            return found;
        };
        match marker {
            // Start of frame, any kind (0xC4 is DHT, 0xC8 JPG, 0xCC DAC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                found.sequential = matches!(marker, 0xC0 | 0xC1);
                // Precision, height and width, then the components.
                if let Some(&count) = segment.get(5) {
                    found.components = count;
                    found.subsampled_vertically = segment
                        .get(6..)
                        .unwrap_or_default()
                        .chunks_exact(3)
                        .take(usize::from(count))
                        .any(|component| component[1] & 0x0F > 1);
                }
            }
            0xDA => {
                if let Some(&count) = segment.first() {
                    found.fewest_in_a_scan =
                        Some(found.fewest_in_a_scan.map_or(count, |c| c.min(count)));
                }
                at += length;
                // The entropy-coded data ends at the first 0xFF followed by
                // neither a stuffed 0x00 nor a restart marker.
                let rest = &bytes[at.min(bytes.len())..];
                let Some(end) = rest
                    .windows(2)
                    .position(|w| w[0] == 0xFF && w[1] != 0x00 && !(0xD0..=0xD7).contains(&w[1]))
                else {
                    return found;
                };
                at += end;
                continue;
            }
            _ => {}
        }
        at += length;
    }
}

/// Decodes `bytes` with `jpeg-decoder`, within `limits`, into RGB as stored
/// (the caller turns it upright). The caller has checked the size the
/// header announces.
pub(super) fn decode_with_jpeg_decoder(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<RgbImage, DecodeError> {
    let malformed = |error: jpeg_decoder::Error| match error {
        jpeg_decoder::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated { format: "JPEG" }
        }
        other => DecodeError::Malformed {
            format: "JPEG",
            source: ImageError::Decoding(DecodingError::new(
                ImageFormatHint::Exact(ImageFormat::Jpeg),
                other,
            )),
        },
    };
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    // Four bytes a pixel (CMYK) is the most this decoder writes.
    decoder.set_max_decoding_buffer_size(
        usize::try_from(limits.max_pixels.saturating_mul(4)).unwrap_or(usize::MAX),
    );
    let samples = decoder.decode().map_err(malformed)?;
    let info = decoder
        .info()
        .ok_or(DecodeError::Truncated { format: "JPEG" })?;
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => samples,
        jpeg_decoder::PixelFormat::L8 => samples.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => samples
            .chunks_exact(4)
            .flat_map(|p| {
                let ink = |v: u8| (255 - u16::from(v)) * (255 - u16::from(p[3])) / 255;
                [ink(p[0]) as u8, ink(p[1]) as u8, ink(p[2]) as u8]
            })
            .collect(),
        // Only lossless JPEGs have 16-bit samples, and those never come here.
        jpeg_decoder::PixelFormat::L16 => {
            return Err(malformed(jpeg_decoder::Error::Format(
                "16-bit samples in a sequential JPEG".into(),
            )));
        }
    };
    RgbImage::from_raw(u32::from(info.width), u32::from(info.height), rgb)
        .ok_or(DecodeError::Truncated { format: "JPEG" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG's markers with the given frame components `(id, hv)` and one
    /// scan per entry of `scans` (its component count), each followed by a
    /// few entropy-coded bytes holding a stuffed 0xFF and a restart marker.
    fn jpeg(frame: u8, components: &[(u8, u8)], scans: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        let mut sof = vec![8, 0, 16, 0, 16, components.len() as u8];
        for &(id, hv) in components {
            sof.extend([id, hv, 0]);
        }
        bytes.extend([0xFF, frame]);
        bytes.extend(((sof.len() + 2) as u16).to_be_bytes());
        bytes.extend(sof);
        for &count in scans {
            let mut sos = vec![count];
            for id in 0..count {
                sos.extend([id, 0]);
            }
            sos.extend([0, 63, 0]);
            bytes.extend([0xFF, 0xDA]);
            bytes.extend(((sos.len() + 2) as u16).to_be_bytes());
            bytes.extend(sos);
            bytes.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        }
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    const YUV420: [(u8, u8); 3] = [(1, 0x22), (2, 0x11), (3, 0x11)];

    #[test]
    fn separate_scans_with_vertical_subsampling_are_the_misread_layout() {
        let found = layout(&jpeg(0xC0, &YUV420, &[1, 1, 1]));
        assert_eq!(
            found,
            Layout {
                sequential: true,
                components: 3,
                subsampled_vertically: true,
                fewest_in_a_scan: Some(1),
            }
        );
        assert!(found.misread_by_zune());
        assert!(layout(&jpeg(0xC1, &YUV420, &[1, 2])).misread_by_zune());
    }

    #[test]
    fn other_layouts_stay_with_zune() {
        // One interleaved scan.
        assert!(!layout(&jpeg(0xC0, &YUV420, &[3])).misread_by_zune());
        // Separate scans, horizontal subsampling only (4:2:2), or none.
        let yuv422 = [(1, 0x21), (2, 0x11), (3, 0x11)];
        assert!(!layout(&jpeg(0xC0, &yuv422, &[1, 1, 1])).misread_by_zune());
        let yuv444 = [(1, 0x11), (2, 0x11), (3, 0x11)];
        assert!(!layout(&jpeg(0xC0, &yuv444, &[1, 1, 1])).misread_by_zune());
        // Progressive: always separate scans, which zune reads well.
        assert!(!layout(&jpeg(0xC2, &YUV420, &[3, 1, 1, 1])).misread_by_zune());
    }

    #[test]
    fn cut_or_garbled_markers_end_the_walk_without_a_panic() {
        let whole = jpeg(0xC0, &YUV420, &[1, 1, 1]);
        for end in 0..whole.len() {
            layout(&whole[..end]);
        }
        let mut garbled = whole.clone();
        garbled[3] = 0xDA;
        garbled[5] = 0xFF;
        layout(&garbled);
        layout(&[0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x00]);
    }
}
