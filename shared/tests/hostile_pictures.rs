//! Pictures made to hurt: the ones shared/tests/classifier.rs does not already
//! cover (empty, HTML, truncated, a PNG pixel bomb, CMYK, 16-bit and animated
//! GIFs are there). Every input is made here, in memory; none needs the model.
//! Each is refused with a reason a person can read, without allocating
//! more than the limits allow (bombs are refused from their headers), or
//! decoded correctly.

use catdog_testing as support;

use catdog::classifier::{DecodeError, DecodeLimits, SupportedFormat, decode};
use image::{DynamicImage, ImageEncoder as _, ImageFormat, RgbImage};
use support::pictures::{encode, png_chunks, png_from_chunks};

/// Refused, with a reason a person can read.
fn refused(what: &str, bytes: &[u8]) -> DecodeError {
    let Err(error) = decode(bytes, &DecodeLimits::default()) else {
        panic!("{what}: accepted as a picture");
    };
    assert!(!error.to_string().is_empty(), "{what}: no reason given");
    eprintln!("{what}: {error}");
    error
}

fn small_picture() -> RgbImage {
    RgbImage::from_fn(32, 24, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 10) as u8, 90])
    })
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

    // WebP lossless: 16000×16000.
    let webp = webp_lossless_claiming(16_000, 16_000);

    // TIFF: one strip, 100000×100000, 8-bit gray.
    let tiff = tiff_claiming(100_000, 100_000);

    for (format, bytes, side) in [
        ("GIF", gif, 65_535),
        ("BMP", bmp, 30_000),
        ("WebP", webp, 16_000),
        ("TIFF", tiff, 100_000),
    ] {
        let error = refused(&format!("{format} pixel bomb"), &bytes);
        assert!(
            matches!(
                error,
                DecodeError::TooManyPixels { width, height, .. } if (width, height) == (side, side)
            ),
            "{format} pixel bomb: {error:?}"
        );
    }
}

#[test]
fn a_picture_with_a_side_of_zero_is_refused_with_its_own_reason() {
    // The largest lossless WebP there is: image-webp 0.2 reads its 16384
    // as 0, so it must not be reported as too many pixels.
    let webp = webp_lossless_claiming(16_384, 16_384);
    let error = refused("16384×16384 WebP", &webp);
    assert!(matches!(error, DecodeError::NoPixels { .. }), "{error:?}");
    assert!(error.to_string().contains("a side of zero"), "{error}");
    for (what, bytes) in [
        ("TIFF 0 wide", tiff_claiming(0, 100)),
        ("TIFF 0 high", tiff_claiming(100, 0)),
    ] {
        let error = refused(what, &bytes);
        assert!(
            matches!(
                error,
                DecodeError::NoPixels { .. } | DecodeError::Malformed { .. }
            ),
            "{what}: {error:?}"
        );
    }
}

/// A lossless WebP header claiming `width`×`height` (1 to 16384 each), with
/// no picture data to speak of.
fn webp_lossless_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut vp8l = vec![0x2F];
    let bits: u32 = (width - 1) | ((height - 1) << 14);
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 9]);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&((4 + 8 + vp8l.len()) as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    webp.extend_from_slice(&vp8l);
    webp
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
    let outcome = decode(&gif, &DecodeLimits::default());
    eprintln!("a 60000×60000 frame on a 16×16 screen: {outcome:?}");
    match outcome {
        // Cropped to the screen: fine, as long as nothing larger came out.
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
    let decoded = decode(&jpeg, &DecodeLimits::default()).expect("the picture still decodes");
    assert_eq!(
        decoded.pixels.dimensions(),
        (32, 24),
        "no orientation applied"
    );

    // A PNG with an 8 MB eXIf chunk whose offsets point far outside it.
    let png = encode(&DynamicImage::ImageRgb8(picture), ImageFormat::Png);
    let mut chunks = png_chunks(&png);
    let mut huge = b"MM\0*".to_vec();
    huge.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    huge.resize(8 << 20, 0xFF);
    chunks.insert(1, (*b"eXIf", huge));
    let png = png_from_chunks(&chunks);
    let decoded = decode(&png, &DecodeLimits::default()).expect("the PNG still decodes");
    assert_eq!(decoded.format, SupportedFormat::Png);
    assert_eq!(decoded.pixels.dimensions(), (32, 24));
}

#[test]
fn a_compressed_text_bomb_in_a_png_does_not_stop_the_picture() {
    // A zTXt chunk holding 64 MiB of compressed zeros: PNG metadata that a
    // careless decoder inflates in full. The picture is what counts: it
    // decodes, or is refused as over the memory limit.
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
    let outcome = decode(&png, &DecodeLimits::default());
    eprintln!(
        "a zTXt bomb: {:?}",
        outcome.as_ref().map(|p| p.pixels.dimensions())
    );
    match outcome {
        Ok(picture) => assert_eq!(picture.pixels.dimensions(), (32, 24)),
        Err(error) => assert!(
            matches!(
                error,
                DecodeError::OverMemoryLimit | DecodeError::Malformed { .. }
            ),
            "{error:?}"
        ),
    }
}
