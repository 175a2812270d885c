//! The classifier as its users meet it: real photos from ../shared/data in
//! every format we accept, hostile inputs, the exported model against the
//! reference logits, and the accuracy on the dev set.
//!
//! The model-dependent tests need `.cache/model/backbone.onnx` (or
//! `$MODEL_DIR/backbone.onnx`); when it is missing they fail and say to run
//! model/build.sh.

use catdog_testing as support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use catdog::classifier::{
    Classifier, ConvolutionKernels, DecodeError, DecodeLimits, InputGeometry, ModelInput,
    OptimizedBackbone, SupportedFormat, decode, run_plan,
};
use catdog::domain::Category;
use image::{DynamicImage, ImageFormat, RgbImage};
use support::model::model_dir;
use support::pictures::{PNG_SIGNATURE, encode, encode_jpeg, png_chunk};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared_data() -> PathBuf {
    let dir = repo_root().join("../shared/data");
    assert!(
        dir.is_dir(),
        "{} is missing: the team's shared data must sit beside the repository as ../shared",
        dir.display()
    );
    dir
}

fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        Classifier::load(&model_dir())
            .unwrap_or_else(|e| panic!("cannot load the model ({e}); build it with model/build.sh"))
    })
}

/// A real cat photo from the dev set, as its original baseline JPEG bytes.
fn cat_photo_jpeg() -> Vec<u8> {
    std::fs::read(shared_data().join("images/dev/cat/cat.4210.jpg")).expect("dev cat photo")
}

fn cat_photo() -> RgbImage {
    image::load_from_memory(&cat_photo_jpeg())
        .expect("dev cat photo decodes")
        .to_rgb8()
}

/// Mean absolute difference per channel value, 0..=255.
fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

fn assert_decodes_like(bytes: &[u8], format: SupportedFormat, original: &RgbImage, tolerance: f64) {
    let decoded = decode(bytes, &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{format:?} did not decode: {e}"));
    assert_eq!(decoded.format, format);
    assert_eq!(
        decoded.pixels.dimensions(),
        original.dimensions(),
        "{format:?}"
    );
    let diff = mean_difference(&decoded.pixels, original);
    assert!(
        diff <= tolerance,
        "{format:?} differs from the original by {diff:.2} on average"
    );
}

// -- formats and colour types (no model needed) -----------------------------------

#[test]
fn a_photo_decodes_the_same_from_every_supported_format() {
    let original = cat_photo();
    let rgb = DynamicImage::ImageRgb8(original.clone());
    let (w, h) = original.dimensions();

    assert_decodes_like(&cat_photo_jpeg(), SupportedFormat::Jpeg, &original, 0.0);
    let progressive = encode_jpeg(original.as_raw(), w, h, jpeg_encoder::ColorType::Rgb, true);
    assert_decodes_like(&progressive, SupportedFormat::Jpeg, &original, 3.0);
    assert_decodes_like(
        &encode(&rgb, ImageFormat::Png),
        SupportedFormat::Png,
        &original,
        0.0,
    );
    assert_decodes_like(
        &encode(&rgb, ImageFormat::WebP),
        SupportedFormat::WebP,
        &original,
        0.0,
    );
    assert_decodes_like(
        &encode(&rgb, ImageFormat::Bmp),
        SupportedFormat::Bmp,
        &original,
        0.0,
    );
    assert_decodes_like(
        &encode(&rgb, ImageFormat::Tiff),
        SupportedFormat::Tiff,
        &original,
        0.0,
    );
    // GIF has a 256-colour palette: close, not equal.
    assert_decodes_like(
        &encode(&rgb, ImageFormat::Gif),
        SupportedFormat::Gif,
        &original,
        8.0,
    );
}

#[test]
fn grayscale_alpha_sixteen_bit_and_cmyk_pictures_come_out_as_rgb() {
    let original = cat_photo();
    let rgb = DynamicImage::ImageRgb8(original.clone());
    let (w, h) = original.dimensions();

    let gray = DynamicImage::ImageLuma8(rgb.to_luma8());
    let gray_as_rgb = gray.to_rgb8();
    assert_decodes_like(
        &encode(&gray, ImageFormat::Png),
        SupportedFormat::Png,
        &gray_as_rgb,
        0.0,
    );
    let gray16 = DynamicImage::ImageLuma16(rgb.to_luma16());
    assert_decodes_like(
        &encode(&gray16, ImageFormat::Png),
        SupportedFormat::Png,
        &gray16.to_rgb8(),
        0.0,
    );
    let gray_alpha = DynamicImage::ImageLumaA8(rgb.to_luma_alpha8());
    assert_decodes_like(
        &encode(&gray_alpha, ImageFormat::Png),
        SupportedFormat::Png,
        &gray_as_rgb,
        0.0,
    );

    // Alpha is dropped, colours are kept.
    let mut rgba = rgb.to_rgba8();
    rgba.pixels_mut().for_each(|p| p.0[3] = 128);
    let rgba = DynamicImage::ImageRgba8(rgba);
    assert_decodes_like(
        &encode(&rgba, ImageFormat::Png),
        SupportedFormat::Png,
        &original,
        0.0,
    );
    assert_decodes_like(
        &encode(&rgba, ImageFormat::WebP),
        SupportedFormat::WebP,
        &original,
        0.0,
    );

    let rgb16 = DynamicImage::ImageRgb16(rgb.to_rgb16());
    assert_decodes_like(
        &encode(&rgb16, ImageFormat::Png),
        SupportedFormat::Png,
        &original,
        0.0,
    );
    assert_decodes_like(
        &encode(&rgb16, ImageFormat::Tiff),
        SupportedFormat::Tiff,
        &original,
        0.0,
    );

    // CMYK as Photoshop writes it (inverted, with an Adobe marker).
    let cmyk: Vec<u8> = original
        .pixels()
        .flat_map(|p| {
            let [r, g, b] = p.0;
            let k = 255 - r.max(g).max(b);
            let ink = |c: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - c - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [ink(r), ink(g), ink(b), k]
        })
        .collect();
    let cmyk_jpeg = encode_jpeg(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk, false);
    assert_decodes_like(&cmyk_jpeg, SupportedFormat::Jpeg, &original, 6.0);
}

/// A minimal EXIF block (little-endian TIFF) holding only an orientation.
fn exif_with_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0II*\0".to_vec();
    exif.extend_from_slice(&8u32.to_le_bytes()); // first IFD at offset 8
    exif.extend_from_slice(&1u16.to_le_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_le_bytes()); // one value
    exif.extend_from_slice(&orientation.to_le_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    exif
}

#[test]
fn exif_orientation_turns_the_picture_upright() {
    // 40×20: left half red, right half blue; stored as if the camera was
    // turned, with orientation 6 ("rotate 90° clockwise to view").
    let stored = RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 95);
    encoder
        .add_app_segment(1, &exif_with_orientation(6))
        .unwrap();
    encoder
        .encode(stored.as_raw(), 40, 20, jpeg_encoder::ColorType::Rgb)
        .unwrap();

    let decoded = decode(&bytes, &DecodeLimits::default()).expect("oriented JPEG decodes");
    assert_eq!(decoded.pixels.dimensions(), (20, 40), "rotated to portrait");
    // Turned clockwise, the red left half is now on top.
    let top = decoded.pixels.get_pixel(10, 5).0;
    let bottom = decoded.pixels.get_pixel(10, 35).0;
    assert!(top[0] > 200 && top[2] < 60, "top is {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom is {bottom:?}");
}

#[test]
fn a_gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, Rgba, RgbaImage};
    let green = RgbaImage::from_pixel(16, 16, Rgba([0, 255, 0, 255]));
    let magenta = RgbaImage::from_pixel(16, 16, Rgba([255, 0, 255, 255]));
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        for frame in [green, magenta] {
            encoder
                .encode_frame(Frame::from_parts(
                    frame,
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                ))
                .unwrap();
        }
    }
    let decoded = decode(&bytes, &DecodeLimits::default()).expect("animated GIF decodes");
    assert_eq!(decoded.pixels.get_pixel(8, 8).0, [0, 255, 0]);
}

// -- refusals ---------------------------------------------------------------------

fn refusal(bytes: &[u8], limits: &DecodeLimits) -> DecodeError {
    match decode(bytes, limits) {
        Ok(picture) => panic!(
            "accepted a {}×{} picture that should be refused",
            picture.width(),
            picture.height()
        ),
        Err(e) => e,
    }
}

#[test]
fn empty_and_non_image_inputs_are_refused_with_clear_errors() {
    let limits = DecodeLimits::default();
    let empty = refusal(b"", &limits);
    assert!(matches!(empty, DecodeError::Empty), "{empty:?}");
    assert_eq!(empty.to_string(), "the file is empty");

    let html = refusal(b"<!doctype html><title>Not Found</title>", &limits);
    assert!(matches!(html, DecodeError::UnsupportedFormat), "{html:?}");
    assert!(
        html.to_string()
            .contains("JPEG, PNG, WebP, GIF, BMP or TIFF"),
        "{html}"
    );

    // Formats the image crate knows but we do not accept are refused too.
    let ico = [0u8, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0];
    assert!(matches!(
        refusal(&ico, &limits),
        DecodeError::UnsupportedFormat
    ));
}

#[test]
fn truncated_pictures_are_refused() {
    let limits = DecodeLimits::default();
    let jpeg = cat_photo_jpeg();
    let cut_jpeg = refusal(&jpeg[..jpeg.len() / 2], &limits);
    assert!(
        matches!(cut_jpeg, DecodeError::Truncated { format: "JPEG" }),
        "{cut_jpeg:?}"
    );
    assert_eq!(cut_jpeg.to_string(), "the JPEG image is truncated");

    let rgb = DynamicImage::ImageRgb8(cat_photo());
    for format in [
        ImageFormat::Png,
        ImageFormat::WebP,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ] {
        let bytes = encode(&rgb, format);
        let error = refusal(&bytes[..bytes.len() / 2], &limits);
        assert!(
            matches!(
                error,
                DecodeError::Truncated { .. } | DecodeError::Malformed { .. }
            ),
            "{format:?} cut in half: {error:?}"
        );
    }
}

#[test]
fn a_one_megabyte_png_claiming_20000_by_20000_pixels_is_refused_from_its_header() {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = PNG_SIGNATURE.to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &vec![0u8; 1 << 20]));
    png.extend(png_chunk(b"IEND", &[]));

    let started = std::time::Instant::now();
    let error = refusal(&png, &DecodeLimits::default());
    assert!(
        matches!(
            error,
            DecodeError::TooManyPixels {
                width: 20_000,
                height: 20_000,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("20000×20000"), "{error}");
    assert!(
        started.elapsed().as_millis() < 500,
        "refusing took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_jpeg_whose_header_claims_too_many_pixels_is_refused() {
    let mut jpeg = cat_photo_jpeg();
    // Rewrite the height and width in the baseline frame header (SOF0).
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    let error = refusal(&jpeg, &DecodeLimits::default());
    assert!(
        matches!(error, DecodeError::TooManyPixels { .. }),
        "{error:?}"
    );
}

#[test]
fn the_byte_and_pixel_limits_are_the_callers() {
    let jpeg = cat_photo_jpeg();
    let (w, h) = cat_photo().dimensions();
    let tight_bytes = DecodeLimits {
        max_bytes: jpeg.len() - 1,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        refusal(&jpeg, &tight_bytes),
        DecodeError::TooManyBytes { .. }
    ));
    let tight_pixels = DecodeLimits {
        max_pixels: u64::from(w * h) - 1,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        refusal(&jpeg, &tight_pixels),
        DecodeError::TooManyPixels { .. }
    ));
    let exact = DecodeLimits {
        max_bytes: jpeg.len(),
        max_pixels: u64::from(w * h),
    };
    assert!(decode(&jpeg, &exact).is_ok());
}

// -- the model --------------------------------------------------------------------

fn reference_input(name: &str) -> ModelInput {
    let values = (0..3 * 224 * 224)
        .map(|i| match name {
            "zeros" => 0.0,
            // [0, c, h, w] = ((c·224·224 + h·224 + w) mod 255) / 127.5 − 1
            _ => (i % 255) as f32 / 127.5 - 1.0,
        })
        .collect();
    ModelInput::from_chw(values, 224).expect("a 3×224×224 input")
}

#[test]
fn the_exported_backbone_gives_the_reference_logits_through_tract() {
    let path = shared_data().join("reference/efficientnet-lite0-logits.json");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("reference logits")).unwrap();
    for name in ["zeros", "ramp"] {
        let output = classifier()
            .backbone_output("lite0", &reference_input(name))
            .expect("the head reads Lite0")
            .unwrap();
        let expected: Vec<f64> = serde_json::from_value(reference[name]["logits"].clone()).unwrap();
        assert_eq!(output.logits.len(), expected.len());
        let worst = output
            .logits
            .iter()
            .zip(&expected)
            .map(|(&got, &want)| (f64::from(got) - want).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 1e-3,
            "{name}: logits differ from the reference by up to {worst:.2e}"
        );
        assert_eq!(output.features.len(), 1280);
    }
}

/// The classifier runs its own stem and depthwise convolutions; both
/// backbones must say what they say with tract's own ones, on a photo and on
/// the reference input (only Lite0 has reference logits).
#[test]
fn both_backbones_agree_with_tracts_own_convolutions() {
    use tract_onnx::prelude::*;
    for file in ["backbone.onnx", "backbone-lite2.onnx"] {
        let path = model_dir().join(file);
        let outputs = |kernels: ConvolutionKernels, input: &ModelInput| {
            let backbone = OptimizedBackbone::load_with(&path, kernels).unwrap();
            let plan = backbone.model.into_runnable().unwrap();
            let outputs = run_plan(&plan, input.tensor().clone().into_tvalue()).unwrap();
            outputs
                .iter()
                .flat_map(|o| {
                    o.to_plain_array_view::<f32>()
                        .unwrap()
                        .iter()
                        .copied()
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<f32>>()
        };
        let backbone = OptimizedBackbone::load(&path).unwrap();
        let ops: std::collections::BTreeSet<String> = backbone
            .model
            .nodes()
            .iter()
            .map(|node| node.op.name().to_string())
            .collect();
        for ours in [
            "CatdogStemChannelsLast",
            "CatdogDepthwiseChannelsLast",
            "CatdogPointwiseChannelsLast",
        ] {
            assert!(ops.contains(ours), "{file}: no {ours} in the plan: {ops:?}");
        }
        assert!(
            !ops.contains("DepthWiseConv"),
            "{file}: a depthwise convolution was left to tract: {ops:?}"
        );
        // Where `pointwise::takes` every width (x86_64 with AVX2 and FMA or
        // AVX-512), every 1×1 convolution and the logits are ours, the ones
        // declutter leaves with a batch axis on one side only too; elsewhere
        // the products reading more than SHORT_PRODUCT_CHANNELS (both
        // backbones have them) stay tract's.
        let ours_take_all = catdog::classifier::pointwise::takes(usize::MAX);
        assert_eq!(
            ops.contains("OptMatMul"),
            !ours_take_all,
            "{file}: with our 1×1 convolutions taking every width: {ours_take_all}, ops: {ops:?}"
        );
        let side = backbone.geometry.side;
        let ramp = (0..3 * side * side)
            .map(|i| (i % 255) as f32 / 127.5 - 1.0)
            .collect();
        let inputs = [
            ModelInput::from_chw(ramp, side).expect("a 3×side×side input"),
            catdog::classifier::preprocess(&cat_photo(), InputGeometry::for_side(side)),
        ];
        for (which, input) in inputs.iter().enumerate() {
            let ours = outputs(ConvolutionKernels::Ours, input);
            let tracts = outputs(ConvolutionKernels::TractMixed, input);
            assert_eq!(ours.len(), tracts.len());
            let worst = ours
                .iter()
                .zip(&tracts)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-4,
                "{file}, input {which}: outputs differ by up to {worst:.2e}"
            );
        }
    }
}

#[test]
fn a_cat_photo_is_a_cat_in_every_format() {
    let original = cat_photo();
    let rgb = DynamicImage::ImageRgb8(original.clone());
    let (w, h) = original.dimensions();
    let variants = [
        ("baseline JPEG", cat_photo_jpeg()),
        (
            "progressive JPEG",
            encode_jpeg(original.as_raw(), w, h, jpeg_encoder::ColorType::Rgb, true),
        ),
        ("PNG", encode(&rgb, ImageFormat::Png)),
        ("WebP", encode(&rgb, ImageFormat::WebP)),
        ("GIF", encode(&rgb, ImageFormat::Gif)),
        ("BMP", encode(&rgb, ImageFormat::Bmp)),
        ("TIFF", encode(&rgb, ImageFormat::Tiff)),
        (
            "grayscale PNG",
            encode(&DynamicImage::ImageLuma8(rgb.to_luma8()), ImageFormat::Png),
        ),
    ];
    for (name, bytes) in variants {
        let analysis = classifier()
            .analyze(&bytes, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = &analysis.classification;
        assert_eq!(c.category, Category::Cat, "{name}: {c:?}");
        assert!(c.confidence > 0.5, "{name}: {c:?}");
        let sum = c.scores.cat + c.scores.dog + c.scores.other;
        assert!((sum - 1.0).abs() < 1e-4, "{name}: scores sum to {sum}");
        assert_eq!((analysis.width, analysis.height), (w, h));
    }
}

#[test]
fn analysis_makes_an_upright_thumbnail_and_placeholder() {
    let original = cat_photo();
    let (w, h) = original.dimensions();
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 90);
    encoder
        .add_app_segment(1, &exif_with_orientation(6))
        .unwrap();
    encoder
        .encode(
            original.as_raw(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();

    let analysis = classifier()
        .analyze(&bytes, &DecodeLimits::default())
        .unwrap();
    assert_eq!(
        (analysis.width, analysis.height),
        (h, w),
        "the picture is shown upright"
    );
    let thumb = &analysis.thumbnail;
    assert_eq!(
        thumb.height,
        480.min(w),
        "the long side is 480 (or the original's)"
    );
    assert!(thumb.width < thumb.height);
    let decoded = image::load_from_memory_with_format(&thumb.jpeg, ImageFormat::Jpeg).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (thumb.width, thumb.height)
    );
    assert!(
        !thumb.placeholder.is_empty() && thumb.placeholder.len() < 64,
        "{}",
        thumb.placeholder
    );
    assert_eq!(
        analysis.classification.category,
        Category::Cat,
        "a turned cat is still a cat"
    );
}

#[test]
fn the_model_version_names_the_head_and_a_digest() {
    let version = classifier().model_version();
    let (head, digest) = version.split_once('+').expect("head+digest");
    assert!(head.starts_with("catdog-head-"), "{version}");
    assert_eq!(digest.len(), 16);
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{version}");
}

#[test]
fn the_dev_set_is_classified_within_the_documented_bound() {
    // MODEL.md: on dev, no cat is called a dog or the reverse, every "other"
    // picture is other, and at most 1 of the 121 cats and dogs is called other
    // (cat-vs-dog accuracy ≥ 99%; the head trained for issue 14 gets all 121).
    let dev = shared_data().join("images/dev");
    let mut confusion = std::collections::HashMap::<(Category, Category), Vec<String>>::new();
    for truth in Category::ALL {
        let folder = dev.join(truth.as_str());
        let mut files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", folder.display());
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let analysis = classifier()
                .analyze(&bytes, &DecodeLimits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            confusion
                .entry((truth, analysis.classification.category))
                .or_default()
                .push(name);
        }
    }
    let count = |t, p| confusion.get(&(t, p)).map_or(0, Vec::len);
    let mut mistakes: Vec<_> = confusion.iter().filter(|((t, p), _)| t != p).collect();
    mistakes.sort_by_key(|((t, p), _)| (t.as_str(), p.as_str()));
    let report = format!("mistakes (truth, predicted): {mistakes:?}");
    assert_eq!(count(Category::Cat, Category::Dog), 0, "{report}");
    assert_eq!(count(Category::Dog, Category::Cat), 0, "{report}");
    assert_eq!(
        count(Category::Other, Category::Cat) + count(Category::Other, Category::Dog),
        0,
        "{report}"
    );
    let pets_called_other =
        count(Category::Cat, Category::Other) + count(Category::Dog, Category::Other);
    assert!(pets_called_other <= 1, "{report}");
    let pets = count(Category::Cat, Category::Cat) + count(Category::Dog, Category::Dog);
    let accuracy = pets as f64 / (pets + pets_called_other) as f64;
    assert!(
        accuracy >= 0.99,
        "cat-vs-dog accuracy {accuracy:.3}: {report}"
    );
}

/// A small deterministic generator (xorshift64*), so the pictures are the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SIDE: u32 = 320;

fn mix(a: [u8; 3], b: [u8; 3], t: f64) -> image::Rgb<u8> {
    let t = t.clamp(0.0, 1.0);
    image::Rgb(std::array::from_fn(|i| {
        (f64::from(a[i]) + (f64::from(b[i]) - f64::from(a[i])) * t).round() as u8
    }))
}

/// Value noise summed over octaves (each half the size and weight of the
/// last): a cloudy, grass- or gravel-like texture in [0, 1].
fn fractal_noise(seed: u64, octaves: u32, persistence: f64) -> Vec<f64> {
    let n = SIDE as usize;
    let mut out = vec![0.0; n * n];
    let mut rng = Noise(seed);
    let mut weight = 1.0;
    let mut total = 0.0;
    for octave in 0..octaves {
        let cells = 2usize << octave;
        let grid: Vec<f64> = (0..(cells + 1) * (cells + 1)).map(|_| rng.next()).collect();
        for y in 0..n {
            for x in 0..n {
                let (fx, fy) = (
                    x as f64 * cells as f64 / n as f64,
                    y as f64 * cells as f64 / n as f64,
                );
                let (ix, iy) = (fx as usize, fy as usize);
                let (tx, ty) = (fx - ix as f64, fy - iy as f64);
                let g = |i: usize, j: usize| grid[j * (cells + 1) + i];
                let top = g(ix, iy) * (1.0 - tx) + g(ix + 1, iy) * tx;
                let bottom = g(ix, iy + 1) * (1.0 - tx) + g(ix + 1, iy + 1) * tx;
                out[y * n + x] += weight * (top * (1.0 - ty) + bottom * ty);
            }
        }
        total += weight;
        weight *= persistence;
    }
    out.iter().map(|v| v / total).collect()
}

fn textures() -> Vec<(String, RgbImage)> {
    let mut pictures = Vec::new();
    let mut rng = Noise(0x5eed_1234);
    pictures.push((
        "colour noise".to_string(),
        RgbImage::from_fn(SIDE, SIDE, |_, _| {
            image::Rgb(std::array::from_fn(|_| (rng.next() * 255.0) as u8))
        }),
    ));
    pictures.push((
        "grey noise".to_string(),
        RgbImage::from_fn(SIDE, SIDE, |_, _| {
            image::Rgb([(rng.next() * 255.0) as u8; 3])
        }),
    ));
    for (angle, period, a, b) in [
        (0.0_f64, 12.0, [0, 0, 0], [255, 255, 255]),
        (0.7, 30.0, [200, 40, 30], [240, 220, 60]),
        (1.9, 7.0, [30, 60, 160], [230, 230, 230]),
        (2.6, 50.0, [90, 60, 30], [200, 160, 110]),
    ] {
        let (c, s) = (angle.cos(), angle.sin());
        pictures.push((
            format!("stripes at {angle} rad, period {period}"),
            RgbImage::from_fn(SIDE, SIDE, |x, y| {
                let t = (f64::from(x) * c + f64::from(y) * s) / period;
                mix(a, b, f64::from(u8::from(t.fract().abs() < 0.5)))
            }),
        ));
    }
    for (name, seed, dark, light, persistence) in [
        ("grass", 1, [25, 70, 15], [140, 200, 70], 0.8),
        ("dry grass", 2, [90, 80, 30], [200, 190, 110], 0.75),
        ("gravel", 3, [70, 68, 64], [200, 196, 188], 0.9),
        ("soil", 4, [55, 38, 22], [150, 112, 75], 0.6),
    ] {
        let v = fractal_noise(seed, 7, persistence);
        pictures.push((
            format!("{name} (fractal noise)"),
            RgbImage::from_fn(SIDE, SIDE, |x, y| {
                mix(dark, light, v[(y * SIDE + x) as usize])
            }),
        ));
    }
    pictures
}

/// A filled shape: inside(x, y) in a unit square, drawn in `ink` on `paper`.
fn silhouette(ink: [u8; 3], paper: [u8; 3], inside: impl Fn(f64, f64) -> bool) -> RgbImage {
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (u, v) = (
            f64::from(x) / f64::from(SIDE),
            f64::from(y) / f64::from(SIDE),
        );
        if inside(u, v) {
            image::Rgb(ink)
        } else {
            image::Rgb(paper)
        }
    })
}

fn ellipse(u: f64, v: f64, cx: f64, cy: f64, rx: f64, ry: f64) -> bool {
    ((u - cx) / rx).powi(2) + ((v - cy) / ry).powi(2) <= 1.0
}

fn bar(u: f64, v: f64, (x0, y0): (f64, f64), (x1, y1): (f64, f64), half_width: f64) -> bool {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let t = (((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    (u - x0 - t * dx).hypot(v - y0 - t * dy) <= half_width
}

/// A horse: long body, four long legs, a raised neck and a long head, a tail.
fn horse(u: f64, v: f64) -> bool {
    ellipse(u, v, 0.48, 0.45, 0.22, 0.1)
        || [0.32, 0.38, 0.58, 0.64]
            .iter()
            .any(|&x| bar(u, v, (x, 0.48), (x, 0.82), 0.025))
        || bar(u, v, (0.66, 0.42), (0.76, 0.2), 0.045)
        || bar(u, v, (0.76, 0.2), (0.86, 0.3), 0.03)
        || bar(u, v, (0.27, 0.42), (0.2, 0.62), 0.02)
}

/// A bird: round body, small head, a beak, a raised wing, a fan tail.
fn bird(u: f64, v: f64) -> bool {
    ellipse(u, v, 0.5, 0.55, 0.18, 0.11)
        || ellipse(u, v, 0.7, 0.42, 0.06, 0.06)
        || bar(u, v, (0.75, 0.42), (0.83, 0.44), 0.012)
        || bar(u, v, (0.45, 0.5), (0.3, 0.25), 0.04)
        || bar(u, v, (0.33, 0.58), (0.18, 0.66), 0.035)
        || bar(u, v, (0.5, 0.64), (0.5, 0.78), 0.01)
}

/// A giraffe: short body on long legs, a very long neck.
fn giraffe(u: f64, v: f64) -> bool {
    ellipse(u, v, 0.45, 0.5, 0.16, 0.08)
        || [0.34, 0.38, 0.52, 0.56]
            .iter()
            .any(|&x| bar(u, v, (x, 0.52), (x, 0.9), 0.018))
        || bar(u, v, (0.56, 0.46), (0.7, 0.1), 0.03)
        || bar(u, v, (0.7, 0.1), (0.78, 0.14), 0.03)
}

#[test]
fn textures_and_flat_silhouettes_are_never_a_cat_or_a_dog() {
    // Issue 14: a grass texture, a gravel texture and a black horse silhouette
    // were called dogs. None of these pictures, made here, may be a cat or a dog.
    let mut pictures = textures();
    for (name, ink, paper) in [
        ("black on white", [0, 0, 0], [255, 255, 255]),
        ("brown on sky blue", [70, 45, 25], [170, 210, 240]),
        ("white on dark grey", [245, 245, 245], [40, 40, 40]),
    ] {
        pictures.push((format!("horse, {name}"), silhouette(ink, paper, horse)));
        pictures.push((format!("bird, {name}"), silhouette(ink, paper, bird)));
        pictures.push((format!("giraffe, {name}"), silhouette(ink, paper, giraffe)));
    }
    let mut called_pets = Vec::new();
    for (name, picture) in &pictures {
        let classification = classifier()
            .classify_input(&classifier().preprocess(picture))
            .expect("classify");
        if classification.category != Category::Other {
            called_pets.push(format!(
                "{name}: {} {:?}",
                classification.category, classification.scores
            ));
        }
    }
    assert!(
        called_pets.is_empty(),
        "{} of {} called a pet: {called_pets:#?}",
        called_pets.len(),
        pictures.len()
    );
}
