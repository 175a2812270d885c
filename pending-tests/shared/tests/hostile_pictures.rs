//! Pictures made to hurt: the ones shared/tests/classifier.rs does not already
//! cover (empty, HTML, truncated, a PNG pixel bomb, CMYK, 16-bit and animated
//! GIFs are there). Every input is made here, in memory; none needs the model.
//! Each is refused with a reason a person can read, quickly and without
//! allocating more than the limits allow, or decoded correctly.

use std::io::Cursor;
use std::time::{Duration, Instant};

use catdog::classifier::{DecodeError, DecodeLimits, SupportedFormat, decode};
use image::{DynamicImage, ImageEncoder as _, ImageFormat, RgbImage};

/// Refusals are read from headers: anything slower means a decoder started.
const QUICK: Duration = Duration::from_millis(1500);

fn refused(what: &str, bytes: &[u8]) -> DecodeError {
    let started = Instant::now();
    let result = decode(bytes, &DecodeLimits::default());
    let took = started.elapsed();
    let error = match result {
        Ok(p) => panic!("{what}: accepted as a {}×{} picture", p.width(), p.height()),
        Err(e) => e,
    };
    assert!(took < QUICK, "{what}: refusing took {took:?}");
    assert!(!error.to_string().is_empty());
    error
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encoding");
    bytes.into_inner()
}

fn small_picture() -> RgbImage {
    RgbImage::from_fn(32, 24, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 10) as u8, 90])
    })
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The chunks of a PNG, to insert or rewrite some.
fn png_chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut chunks = Vec::new();
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
        chunks.push((kind, png[at + 8..at + 8 + len].to_vec()));
        at += 12 + len;
    }
    chunks
}

fn png_from_chunks(chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in chunks {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        png.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    png
}

#[test]
fn svg_with_script_html_and_other_files_are_not_pictures() {
    let cases: [(&str, &[u8]); 8] = [
        (
            "SVG with a script",
            br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script><rect width="10" height="10"/></svg>"#,
        ),
        ("bare SVG", br#"<svg onload="alert(1)"/>"#),
        (
            "HTML page",
            b"<html><body><img src=x onerror=alert(1)></body></html>",
        ),
        ("JSON error", br#"{"error": "rate limited"}"#),
        ("PDF", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
        ("ELF binary", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"),
        ("ZIP archive", b"PK\x03\x04\x14\0\0\0\0\0"),
        ("a single zero byte", b"\0"),
    ];
    for (what, bytes) in cases {
        let error = refused(what, bytes);
        assert!(
            matches!(error, DecodeError::UnsupportedFormat),
            "{what}: {error:?}"
        );
    }
    // The format comes from the bytes: an SVG after a GIF's magic is a
    // (broken) GIF, never an SVG, so it can never be served as one.
    let disguised = b"GIF89a<svg><script>alert(1)</script></svg>";
    let error = refused("SVG behind a GIF signature", disguised);
    assert!(
        !matches!(error, DecodeError::UnsupportedFormat),
        "read as a GIF: {error:?}"
    );
}

#[test]
fn magic_bytes_alone_are_refused_for_every_format() {
    let magics: [(&str, &[u8]); 6] = [
        ("JPEG", b"\xFF\xD8\xFF"),
        ("PNG", b"\x89PNG\r\n\x1a\n"),
        ("GIF", b"GIF89a"),
        ("WebP", b"RIFF\0\0\0\0WEBPVP8 "),
        ("BMP", b"BM"),
        ("TIFF", b"II*\0"),
    ];
    for (what, magic) in magics {
        let error = refused(what, magic);
        assert!(
            matches!(
                error,
                DecodeError::Truncated { .. }
                    | DecodeError::Malformed { .. }
                    | DecodeError::UnsupportedFormat
            ),
            "{what}: {error:?}"
        );
    }
}

#[test]
fn pixel_bombs_in_every_format_are_refused_from_their_headers() {
    // GIF: logical screen 65535×65535.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&65_535u16.to_le_bytes());
    gif.extend_from_slice(&65_535u16.to_le_bytes());
    gif.extend_from_slice(&[0, 0, 0]);
    gif.extend_from_slice(&[
        0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 2, 0x4C, 0x01, 0, 0x3B,
    ]);

    // BMP: 30000×30000, 24 bits, no pixel data.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&54u32.to_le_bytes()); // file size (a lie)
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    bmp.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER
    bmp.extend_from_slice(&30_000i32.to_le_bytes());
    bmp.extend_from_slice(&30_000i32.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0; 24]);

    // WebP lossless: 16384×16384.
    let mut vp8l = vec![0x2F];
    let bits: u32 = 16_383 | (16_383 << 14);
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 8]);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&((4 + 8 + vp8l.len()) as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    webp.extend_from_slice(&vp8l);

    // TIFF: one strip, 100000×100000, 8-bit gray.
    let tiff = tiff_claiming(100_000, 100_000);

    for (what, bytes, format) in [
        ("GIF", gif, "GIF"),
        ("BMP", bmp, "BMP"),
        ("WebP", webp, "WebP"),
        ("TIFF", tiff, "TIFF"),
    ] {
        let error = refused(&format!("{what} pixel bomb"), &bytes);
        assert!(
            matches!(
                error,
                DecodeError::TooManyPixels { .. } | DecodeError::OverMemoryLimit
            ),
            "{format} pixel bomb: {error:?}"
        );
    }
}

/// A little-endian TIFF header with one IFD claiming `width`×`height` gray
/// pixels in one tiny uncompressed strip.
fn tiff_claiming(width: u32, height: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 8] = [
        (256, 4, width),              // ImageWidth, LONG
        (257, 4, height),             // ImageLength
        (258, 3, 8),                  // BitsPerSample
        (259, 3, 1),                  // Compression: none
        (262, 3, 1),                  // Photometric: black is zero
        (273, 4, 8 + 2 + 8 * 12 + 4), // StripOffsets: right after the IFD
        (278, 4, height),             // RowsPerStrip
        (279, 4, 16),                 // StripByteCounts
    ];
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            tiff.extend_from_slice(&(value as u16).to_le_bytes());
            tiff.extend_from_slice(&[0, 0]);
        } else {
            tiff.extend_from_slice(&value.to_le_bytes());
        }
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&[0x80; 16]);
    tiff
}

#[test]
fn a_decompression_bomb_is_refused_before_it_expands() {
    // 9000×9000 gray zeros: 81 megapixels that compress to about 80 KB.
    let side = 9_000;
    let zeros = image::GrayImage::new(side, side);
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(zeros.as_raw(), side, side, image::ExtendedColorType::L8)
    .expect("encoding the bomb");
    drop(zeros);
    assert!(png.len() < 200 * 1024, "the bomb is {} bytes", png.len());
    let error = refused("PNG decompression bomb", &png);
    assert!(
        matches!(
            error,
            DecodeError::TooManyPixels {
                width: 9_000,
                height: 9_000,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_gif_frame_larger_than_its_screen_is_not_a_way_around_the_limit() {
    // Logical screen 16×16 (well under the limit), first frame 60000×60000.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&16u16.to_le_bytes());
    gif.extend_from_slice(&16u16.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2
    gif.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    gif.push(0x2C);
    gif.extend_from_slice(&0u16.to_le_bytes());
    gif.extend_from_slice(&0u16.to_le_bytes());
    gif.extend_from_slice(&60_000u16.to_le_bytes());
    gif.extend_from_slice(&60_000u16.to_le_bytes());
    gif.push(0);
    gif.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
    let started = Instant::now();
    match decode(&gif, &DecodeLimits::default()) {
        // Cropped to the screen: fine, as long as it stayed small and quick.
        Ok(picture) => assert!(picture.width() <= 16 && picture.height() <= 16),
        Err(error) => assert!(
            matches!(
                error,
                DecodeError::TooManyPixels { .. }
                    | DecodeError::OverMemoryLimit
                    | DecodeError::Malformed { .. }
                    | DecodeError::Truncated { .. }
            ),
            "{error:?}"
        ),
    }
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}

#[test]
fn huge_and_broken_exif_blocks_do_not_stop_a_picture() {
    let picture = small_picture();
    // A JPEG whose APP1 EXIF segments are as large as a segment can be,
    // several times over, with an IFD that claims 65535 entries.
    let mut exif = b"Exif\0\0II*\0".to_vec();
    exif.extend_from_slice(&8u32.to_le_bytes());
    exif.extend_from_slice(&u16::MAX.to_le_bytes());
    exif.resize(65_533 - 2, 0xAB);
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    for _ in 0..8 {
        encoder.add_app_segment(1, &exif).expect("an APP1 segment");
    }
    encoder
        .encode(picture.as_raw(), 32, 24, jpeg_encoder::ColorType::Rgb)
        .expect("encoding");
    assert!(jpeg.len() > 500_000);
    let started = Instant::now();
    let decoded = decode(&jpeg, &DecodeLimits::default()).expect("the picture still decodes");
    assert_eq!(
        decoded.pixels.dimensions(),
        (32, 24),
        "no orientation applied"
    );
    assert!(started.elapsed() < QUICK);

    // A PNG with an 8 MB eXIf chunk whose offsets point far outside it.
    let png = encode(&DynamicImage::ImageRgb8(picture), ImageFormat::Png);
    let mut chunks = png_chunks(&png);
    let mut huge = b"MM\0*".to_vec();
    huge.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    huge.resize(8 << 20, 0xFF);
    chunks.insert(1, (*b"eXIf", huge));
    let png = png_from_chunks(&chunks);
    let started = Instant::now();
    let decoded = decode(&png, &DecodeLimits::default()).expect("the PNG still decodes");
    assert_eq!(decoded.format, SupportedFormat::Png);
    assert_eq!(decoded.pixels.dimensions(), (32, 24));
    assert!(started.elapsed() < QUICK);
}

#[test]
fn a_compressed_text_bomb_in_a_png_is_not_expanded() {
    // A zTXt chunk holding 64 MiB of compressed zeros: PNG metadata that a
    // careless decoder inflates in full.
    let zeros = vec![0u8; 64 << 20];
    let mut compressed = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut compressed,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(&zeros, 8192, 8192, image::ExtendedColorType::L8)
    .expect("compressing");
    drop(zeros);
    // The IDAT of that PNG is a zlib stream of (filter byte + zeros) rows: as
    // good a bomb as any for a text chunk.
    let stream: Vec<u8> = png_chunks(&compressed)
        .into_iter()
        .filter(|(kind, _)| kind == b"IDAT")
        .flat_map(|(_, data)| data)
        .collect();
    let mut ztxt = b"Comment\0\0".to_vec();
    ztxt.extend_from_slice(&stream);
    let png = encode(&DynamicImage::ImageRgb8(small_picture()), ImageFormat::Png);
    let mut chunks = png_chunks(&png);
    chunks.insert(1, (*b"zTXt", ztxt));
    let png = png_from_chunks(&chunks);
    assert!(png.len() < 200 * 1024);
    let started = Instant::now();
    match decode(&png, &DecodeLimits::default()) {
        Ok(picture) => assert_eq!(picture.pixels.dimensions(), (32, 24)),
        Err(error) => assert!(
            matches!(
                error,
                DecodeError::OverMemoryLimit | DecodeError::Malformed { .. }
            ),
            "{error:?}"
        ),
    }
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
}
