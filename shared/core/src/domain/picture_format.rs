//! What a picture is, told by its first bytes. A URL's extension or a
//! server's Content-Type is only a claim; the bytes are what the classifier
//! will decode. Ingestion and the classifier both ask this one function, so
//! a file ingestion keeps is one the classifier tries to decode, and a file
//! the classifier would refuse as not a picture is refused at the door.
//!
//! Written by hand rather than taken from the `image` crate's
//! `guess_format`, which reads the same signatures: the functions that only
//! store or list pictures (ingest-trigger, list-images) must not link the
//! image codecs. A test holds the two in agreement on our formats.

/// The formats the classifier decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PictureFormat {
    Jpeg,
    Png,
    WebP,
    Gif,
    Bmp,
    Tiff,
}

impl PictureFormat {
    /// The format these bytes begin with, or `None` when they are not one of
    /// ours.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(b"\xff\xd8\xff") {
            Some(Self::Jpeg)
        } else if bytes.starts_with(PNG) {
            Some(Self::Png)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 14 && bytes.starts_with(b"BM") {
            // At least a BMP file header's 14 bytes.
            Some(Self::Bmp)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(Self::Tiff)
        } else {
            None
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
            Self::Gif => "GIF",
            Self::Bmp => "BMP",
            Self::Tiff => "TIFF",
        }
    }

    /// The MIME type, for storing and serving the original.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
            Self::Bmp => "image/bmp",
            Self::Tiff => "image/tiff",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &[(&[u8], PictureFormat)] = &[
        (b"\xff\xd8\xff\xe0\0\x10JFIF", PictureFormat::Jpeg),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", PictureFormat::Png),
        (b"RIFF\x10\0\0\0WEBPVP8 ", PictureFormat::WebP),
        (b"GIF89a\x01\0\x01\0", PictureFormat::Gif),
        (b"GIF87a\x01\0\x01\0", PictureFormat::Gif),
        (b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0", PictureFormat::Bmp),
        (b"II*\0\x08\0\0\0", PictureFormat::Tiff),
        (b"MM\0*\0\0\0\x08", PictureFormat::Tiff),
    ];

    #[test]
    fn formats_are_told_by_their_bytes() {
        for (bytes, format) in OURS {
            assert_eq!(PictureFormat::sniff(bytes), Some(*format), "{bytes:?}");
        }
    }

    #[test]
    fn other_bytes_are_not_pictures() {
        for bad in [
            &b""[..],
            b"<!doctype html><html>",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\">",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"\x1f\x8b\x08\0",
            b"BM",
            b"BMP\n",
            b"\xff\xd8",
            // Formats the image crate knows and we do not decode.
            b"\0\0\x01\0\x01\0\x10\x10",
            b"qoif\0\0\0\x01\0\0\0\x01\x03\0",
            b"\0\0\0\x1cftypavif",
        ] {
            assert_eq!(PictureFormat::sniff(bad), None, "{bad:?}");
        }
    }

    /// The image crate, which decodes the pictures, reads each of our
    /// signatures as the same format.
    #[test]
    fn the_decoders_crate_agrees() {
        for (bytes, format) in OURS {
            let theirs = image::guess_format(bytes).expect("a known format");
            assert_eq!(theirs.to_mime_type(), format.content_type(), "{bytes:?}");
        }
    }
}
