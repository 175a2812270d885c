//! The backbone's depthwise convolutions, channels-last, with the ReLU6 that
//! follows them fused in, and the inner loop compiled for the CPU found at
//! run time.
//!
//! Why our own op: on x86-64, tract 0.23.9 has a vector kernel for
//! channels-first depthwise convolutions read with stride 1 only. Strided
//! ones, and those on 7×7 maps where nearly every point lies in a border
//! zone, fall back to scalar loops; its channels-last loop is plain Rust built
//! for baseline x86-64 (SSE2). Depthwise convolutions and the ReLU6 after
//! them were about 40% of tract's time per inference (MODEL.md, "Speed").
//! Cloud Run promises no AVX2, so this module does not assume it at build
//! time: [`multiversion`] builds the loop several times (AVX-512, AVX2 with
//! FMA, AVX, baseline) and picks the best the CPU supports when it is first
//! called.
//!
//! The arithmetic is tract's scalar walk, in the same order: the bias, then
//! one multiply and one add per tap, row by row and column by column of the
//! kernel. There is no fused multiply-add, so every value is the one tract
//! computes, and the reference-logits test guards that.

use std::fmt;
use std::sync::Arc;

use multiversion::multiversion;
use multiversion::target::target_cfg_f;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::Conv;

use crate::channels_last::{self, ChannelsLastConv};

/// Kernels larger than this (more than 7×7) stay with tract.
pub const MAX_TAPS: usize = 49;

/// Channels per block of the inner loop: four 8-lane vectors on AVX.
pub(crate) const BLOCK: usize = 32;
/// The block on AVX-512: four 16-lane vectors. Four sums in flight, not the
/// two that 32 channels fill there, because each sum waits on its own add
/// from the tap before; with two, AVX-512 ran no faster than AVX2.
pub(crate) const WIDE_BLOCK: usize = 64;
/// The narrower block for what is left of the channels.
pub(crate) const LANES: usize = 8;
/// Maps up to this size are convolved a channel block at a time (see
/// [`convolve`]): about the L2 cache of one core (1–2 MiB on current x86-64
/// servers).
const CACHED_MAP_BYTES: usize = 3 << 19;

/// What follows the convolution inside the op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    Linear,
    /// `min(max(x, 0), 6)`, as ONNX's `Clip(0, 6)` computes it (NaN stays NaN).
    Relu6,
}

/// Sizes of one depthwise convolution over a channels-last map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub channels: usize,
    pub input_height: usize,
    pub input_width: usize,
    pub output_height: usize,
    pub output_width: usize,
    pub kernel_height: usize,
    pub kernel_width: usize,
    pub stride_height: usize,
    pub stride_width: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Geometry {
    fn input_len(&self) -> usize {
        self.input_height * self.input_width * self.channels
    }

    fn output_len(&self) -> usize {
        self.output_height * self.output_width * self.channels
    }

    pub(crate) fn taps(&self) -> usize {
        self.kernel_height * self.kernel_width
    }

    /// The kernel rows that land inside the input for output row `oy`.
    pub(crate) fn rows(&self, oy: usize) -> (usize, usize, std::ops::Range<usize>) {
        Self::window(
            oy,
            self.stride_height,
            self.pad_top,
            self.kernel_height,
            self.input_height,
        )
    }

    pub(crate) fn columns(&self, ox: usize) -> (usize, usize, std::ops::Range<usize>) {
        Self::window(
            ox,
            self.stride_width,
            self.pad_left,
            self.kernel_width,
            self.input_width,
        )
    }

    /// For output position `o`: the first input index the kernel reads, the
    /// first kernel index that reads it, and the kernel indices inside the
    /// input. Padding contributes zeros, so the taps over it are skipped.
    fn window(
        o: usize,
        stride: usize,
        pad: usize,
        kernel: usize,
        input: usize,
    ) -> (usize, usize, std::ops::Range<usize>) {
        let start = o * stride;
        let first = pad.saturating_sub(start);
        let last = (input + pad).saturating_sub(start).min(kernel);
        let first_input = (start + first).saturating_sub(pad);
        (first_input, first, first..last.max(first))
    }
}

/// A depthwise convolution over one or more channels-last maps
/// (`[.., height, width, channels]`), weights and bias held by the op.
#[derive(Clone, PartialEq, Eq)]
pub struct DepthwiseChannelsLast {
    geometry: Geometry,
    /// `[kernel_height * kernel_width, channels]`: each tap's channels are
    /// contiguous, as the inner loop reads them.
    weights: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    activation: Activation,
}

impl fmt::Debug for DepthwiseChannelsLast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepthwiseChannelsLast")
            .field("geometry", &self.geometry)
            .field("activation", &self.activation)
            .finish_non_exhaustive()
    }
}

impl DepthwiseChannelsLast {
    /// The op for `conv` (a float depthwise convolution, channels-first, with
    /// constant kernel and bias) reading a map of `input_hw`, or `None` when
    /// it is not one this op computes.
    pub fn for_conv(
        conv: &Conv,
        input_hw: [usize; 2],
        kernel: &Tensor,
        bias: &Tensor,
        activation: Activation,
    ) -> TractResult<Option<Self>> {
        let spec = &conv.pool_spec;
        let channels = conv.group;
        let depthwise = conv.q_params.is_none()
            && channels > 0
            && channels == spec.input_channels
            && channels == spec.output_channels;
        if !depthwise
            || spec.kernel_shape.len() != 2
            || spec.dilations().iter().any(|d| *d != 1)
            || spec.strides().contains(&0)
            || kernel.datum_type() != f32::datum_type()
            || bias.datum_type() != f32::datum_type()
            || !(bias.len() == 1 || bias.len() == channels)
        {
            return Ok(None);
        }
        let [kernel_height, kernel_width] = [spec.kernel_shape[0], spec.kernel_shape[1]];
        let taps = kernel_height * kernel_width;
        if taps == 0 || taps > MAX_TAPS || kernel.len() != channels * taps {
            return Ok(None);
        }
        let padding = spec.computed_padding(&input_hw);
        let strides = spec.strides();
        let geometry = Geometry {
            channels,
            input_height: input_hw[0],
            input_width: input_hw[1],
            output_height: padding[0].convoluted,
            output_width: padding[1].convoluted,
            kernel_height,
            kernel_width,
            stride_height: strides[0],
            stride_width: strides[1],
            pad_top: padding[0].pad_before,
            pad_left: padding[1].pad_before,
        };
        // [groups, 1, 1, taps] whatever the kernel's own format.
        let grouped = conv.kernel_fmt.kernel_as_group_o_i_hw(kernel, channels)?;
        let grouped = grouped.try_as_plain_ram()?;
        let grouped = grouped.as_slice::<f32>()?;
        let mut weights = vec![0.0f32; taps * channels];
        for (c, taps_of_c) in grouped.chunks_exact(taps).enumerate() {
            for (t, w) in taps_of_c.iter().enumerate() {
                weights[t * channels + c] = *w;
            }
        }
        let bias_values = bias.try_as_plain_ram()?;
        let bias_values = bias_values.as_slice::<f32>()?;
        let bias_values = if bias_values.len() == 1 {
            vec![bias_values[0]; channels]
        } else {
            bias_values.to_vec()
        };
        Ok(Some(Self {
            geometry,
            weights: Arc::new(tensor1(&weights).into_shape(&[taps, channels])?),
            bias: Arc::new(tensor1(&bias_values)),
            activation,
        }))
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }
}

impl Op for DepthwiseChannelsLast {
    fn name(&self) -> StaticName {
        "CatdogDepthwiseChannelsLast".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![
            format!("{:?}", self.geometry),
            format!("{:?}", self.activation),
        ])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

channels_last::eval_op!(DepthwiseChannelsLast);

impl ChannelsLastConv for DepthwiseChannelsLast {
    const WHAT: &'static str = "depthwise convolution";

    fn weights_and_bias(&self) -> (&Tensor, &Tensor) {
        (&self.weights, &self.bias)
    }

    fn output_shape(&self, shape: &[usize]) -> TractResult<TVec<usize>> {
        let g = &self.geometry;
        let rank = shape.len();
        ensure!(
            rank >= 3 && shape[rank - 3..] == [g.input_height, g.input_width, g.channels],
            "depthwise convolution expects [.., {}, {}, {}], got {shape:?}",
            g.input_height,
            g.input_width,
            g.channels
        );
        let mut output: TVec<usize> = shape.into();
        output[rank - 3] = g.output_height;
        output[rank - 2] = g.output_width;
        Ok(output)
    }

    fn map_lens(&self, _input: &[usize], _output: &[usize]) -> (usize, usize) {
        (self.geometry.input_len(), self.geometry.output_len())
    }

    fn convolve(&self, weights: &[f32], bias: &[f32], map: &[f32], out: &mut [f32]) {
        convolve(&self.geometry, map, weights, bias, self.activation, out)
    }
}

impl TypedOp for DepthwiseChannelsLast {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        channels_last::output_facts(self, inputs)
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let g = &self.geometry;
        let maps = inputs[0].shape.volume() / (g.input_len() as i64);
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            maps * (g.output_len() * g.taps()) as i64
        )))
    }

    as_op!();
}

/// Calls `f::<N>(.., c, ..)` for every channel block of a point or a map:
/// blocks of [`WIDE_BLOCK`] channels where `wide`, then of [`BLOCK`], then
/// of [`LANES`], then one channel at a time. `f::<_, G>(..)` passes the
/// further generic arguments `G` after `N`.
macro_rules! each_block {
    ($wide:expr, $channels:expr, $c:ident => $f:ident $(::<_ $(, $g:tt)*>)? ($($arg:expr),*)) => {{
        let mut $c = 0;
        while $wide && $c + $crate::depthwise::WIDE_BLOCK <= $channels {
            $f::<{ $crate::depthwise::WIDE_BLOCK } $($(, { $g })*)?>($($arg),*);
            $c += $crate::depthwise::WIDE_BLOCK;
        }
        while $c + $crate::depthwise::BLOCK <= $channels {
            $f::<{ $crate::depthwise::BLOCK } $($(, { $g })*)?>($($arg),*);
            $c += $crate::depthwise::BLOCK;
        }
        while $c + $crate::depthwise::LANES <= $channels {
            $f::<{ $crate::depthwise::LANES } $($(, { $g })*)?>($($arg),*);
            $c += $crate::depthwise::LANES;
        }
        while $c < $channels {
            $f::<1 $($(, { $g })*)?>($($arg),*);
            $c += 1;
        }
    }};
}
pub(crate) use each_block;

/// The convolution of one map, in one of two orders chosen by its size.
///
/// Small maps go channel block by channel block ([`plane`]): the block's
/// weights are copied next to each other once and stay in the L1 cache while
/// every output point is summed, and the map, read again for each block,
/// stays in the L2 cache between blocks. Large maps go output point by
/// output point ([`point`]), every block at each, so the map is read once.
/// A standalone copy timing Lite2's geometries on an Intel Xeon with AVX-512
/// (MODEL.md, "Speed"): by blocks took 0.22–0.36 ms where by points took
/// 0.40–0.65 ms on the 33×33×288 and 17×17×720 maps, and 0.53 ms against
/// 0.35 on the 6.5 MB map of 130×130×96 read with stride 2.
#[multiversion(targets(
    "x86_64+avx512f+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "aarch64+neon"
))]
fn convolve(
    g: &Geometry,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    activation: Activation,
    output: &mut [f32],
) {
    // multiversion picks the AVX-512 version only on CPUs with the Ice Lake
    // set of AVX-512 extensions (Ice Lake, Sapphire Rapids, Zen 4); older
    // ones, whose clock drops under 512-bit code, run the AVX2 version.
    let wide = target_cfg_f!(target_feature = "avx512f");
    let channels = g.channels;
    let one_pass = channels <= if wide { WIDE_BLOCK } else { BLOCK };
    if one_pass || g.input_len() * size_of::<f32>() <= CACHED_MAP_BYTES {
        each_block!(wide, channels, c => plane(g, input, weights, bias, activation, c, output));
        return;
    }
    // (input offset, weight offset) of each tap inside the input.
    let mut taps = [(0usize, 0usize); MAX_TAPS];
    for oy in 0..g.output_height {
        let (iy0, ky0, rows) = g.rows(oy);
        for ox in 0..g.output_width {
            let (ix0, kx0, columns) = g.columns(ox);
            let mut count = 0;
            for ky in rows.clone() {
                let iy = iy0 + (ky - ky0);
                for kx in columns.clone() {
                    let ix = ix0 + (kx - kx0);
                    taps[count] = (
                        (iy * g.input_width + ix) * channels,
                        (ky * g.kernel_width + kx) * channels,
                    );
                    count += 1;
                }
            }
            let taps = &taps[..count];
            let start = (oy * g.output_width + ox) * channels;
            let out = &mut output[start..start + channels];
            each_block!(wide, channels, c => point(input, weights, bias, taps, c, activation, out));
        }
    }
}

/// Channels `c..c + N` of the whole map. Inlined into each version of
/// [`convolve`], so it is compiled for the same CPU features.
#[inline(always)]
fn plane<const N: usize>(
    g: &Geometry,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    activation: Activation,
    c: usize,
    output: &mut [f32],
) {
    let channels = g.channels;
    // The block's weights, tap after tap, next to each other.
    let mut block_weights = [[0.0f32; N]; MAX_TAPS];
    for (t, w) in block_weights.iter_mut().take(g.taps()).enumerate() {
        w.copy_from_slice(&weights[t * channels + c..][..N]);
    }
    let mut block_bias = [0.0f32; N];
    block_bias.copy_from_slice(&bias[c..c + N]);
    for oy in 0..g.output_height {
        let (iy0, ky0, rows) = g.rows(oy);
        for ox in 0..g.output_width {
            let (ix0, kx0, columns) = g.columns(ox);
            let mut sum = block_bias;
            for ky in rows.clone() {
                let iy = iy0 + (ky - ky0);
                for kx in columns.clone() {
                    let ix = ix0 + (kx - kx0);
                    let x = &input[(iy * g.input_width + ix) * channels + c..][..N];
                    let k = &block_weights[ky * g.kernel_width + kx];
                    for j in 0..N {
                        sum[j] += k[j] * x[j];
                    }
                }
            }
            let start = (oy * g.output_width + ox) * channels + c;
            finish(&mut sum, activation, &mut output[start..start + N]);
        }
    }
}

/// Channels `c..c + N` of one output point. Inlined into each version of
/// [`convolve`], so it is compiled for the same CPU features.
#[inline(always)]
fn point<const N: usize>(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    taps: &[(usize, usize)],
    c: usize,
    activation: Activation,
    out: &mut [f32],
) {
    let mut sum = [0.0f32; N];
    sum.copy_from_slice(&bias[c..c + N]);
    for &(i, w) in taps {
        let x = &input[i + c..i + c + N];
        let k = &weights[w + c..w + c + N];
        for j in 0..N {
            sum[j] += k[j] * x[j];
        }
    }
    finish(&mut sum, activation, &mut out[c..c + N]);
}

#[inline(always)]
pub(crate) fn finish<const N: usize>(sum: &mut [f32; N], activation: Activation, out: &mut [f32]) {
    if activation == Activation::Relu6 {
        for s in sum.iter_mut() {
            *s = s.clamp(0.0, 6.0);
        }
    }
    out.copy_from_slice(sum);
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::ops::cnn::{KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    use super::*;

    /// The convolution written out directly: every output point, every
    /// channel, every tap, zeros where the kernel overhangs the input.
    fn direct(
        g: &Geometry,
        input: &[f32],
        kernel_oihw: &[f32],
        bias: &[f32],
        relu6: bool,
    ) -> Vec<f32> {
        let mut out = Vec::with_capacity(g.output_len());
        for oy in 0..g.output_height {
            for ox in 0..g.output_width {
                for c in 0..g.channels {
                    let mut sum = bias[c];
                    for ky in 0..g.kernel_height {
                        for kx in 0..g.kernel_width {
                            let iy = (oy * g.stride_height + ky) as isize - g.pad_top as isize;
                            let ix = (ox * g.stride_width + kx) as isize - g.pad_left as isize;
                            if iy < 0
                                || ix < 0
                                || iy >= g.input_height as isize
                                || ix >= g.input_width as isize
                            {
                                continue;
                            }
                            let x =
                                input[(iy as usize * g.input_width + ix as usize) * g.channels + c];
                            let w = kernel_oihw[(c * g.kernel_height + ky) * g.kernel_width + kx];
                            sum += w * x;
                        }
                    }
                    out.push(if relu6 { sum.clamp(0.0, 6.0) } else { sum });
                }
            }
        }
        out
    }

    /// A depthwise `Conv` as tract's ONNX loader makes it (channels-first,
    /// OIHW kernel), with ONNX's "SAME_UPPER" or explicit padding.
    fn conv(channels: usize, kernel: usize, stride: usize, padding: PaddingSpec) -> Conv {
        Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![kernel, kernel],
                padding,
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: channels,
                output_channels: channels,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: channels,
            q_params: None,
        }
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 250.0)
            .collect()
    }

    #[test]
    fn matches_the_direct_convolution_at_every_border_stride_and_channel_count() {
        // Channel counts that use the 64-wide blocks (AVX-512 only), the
        // 32-wide ones, the 8-wide ones, the scalar tail and all of them;
        // maps smaller than the kernel; both strides; padding on one side
        // only, as "SAME" makes for stride 2; small maps, convolved a block
        // at a time, and the last two, over `CACHED_MAP_BYTES`, a point at a
        // time.
        let cases = [
            (13, 9, 3, 1, PaddingSpec::SameUpper),
            (40, 7, 5, 1, PaddingSpec::SameUpper),
            (96, 8, 3, 2, PaddingSpec::SameUpper),
            (
                45,
                11,
                5,
                2,
                PaddingSpec::Explicit(tvec![1, 2], tvec![2, 1]),
            ),
            (8, 3, 5, 1, PaddingSpec::SameUpper),
            (33, 6, 3, 2, PaddingSpec::Valid),
            (1, 4, 7, 1, PaddingSpec::SameLower),
            (171, 5, 3, 1, PaddingSpec::SameUpper),
            (200, 48, 3, 2, PaddingSpec::SameUpper),
            (150, 60, 5, 1, PaddingSpec::SameUpper),
        ];
        for (channels, side, ..) in &cases[cases.len() - 2..] {
            assert!(side * side * channels * size_of::<f32>() > CACHED_MAP_BYTES);
        }
        for (case, (channels, side, kernel, stride, padding)) in cases.into_iter().enumerate() {
            let conv = conv(channels, kernel, stride, padding);
            let weights = values(channels * kernel * kernel, case);
            let kernel_tensor = tensor1(&weights)
                .into_shape(&[channels, 1, kernel, kernel])
                .unwrap();
            let bias = values(channels, case + 100);
            for relu6 in [false, true] {
                let activation = if relu6 {
                    Activation::Relu6
                } else {
                    Activation::Linear
                };
                let op = DepthwiseChannelsLast::for_conv(
                    &conv,
                    [side, side],
                    &kernel_tensor,
                    &tensor1(&bias),
                    activation,
                )
                .unwrap()
                .expect("a depthwise convolution the op computes");
                let g = op.geometry();
                let input = values(side * side * channels, case + 200);
                let x = tensor1(&input)
                    .into_shape(&[1, side, side, channels])
                    .unwrap();
                let got = op
                    .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
                    .unwrap()
                    .remove(0);
                assert_eq!(
                    got.shape(),
                    &[1, g.output_height, g.output_width, channels],
                    "case {case}"
                );
                let got = got.try_as_plain_ram().unwrap();
                let got = got.as_slice::<f32>().unwrap();
                let want = direct(&g, &input, &weights, &bias, relu6);
                // The same sums in the same order: equal, not merely close.
                assert_eq!(got, want.as_slice(), "case {case}, {g:?}, relu6 {relu6}");
            }
        }
    }

    #[test]
    fn what_it_does_not_compute_stays_with_tract() {
        let weights = |c: usize, k: usize| {
            tensor1(&values(c * k * k, 0))
                .into_shape(&[c, 1, k, k])
                .unwrap()
        };
        let bias = tensor1(&values(4, 1));
        let linear = Activation::Linear;
        // A kernel over 7×7.
        let big = conv(4, 9, 1, PaddingSpec::SameUpper);
        assert!(
            DepthwiseChannelsLast::for_conv(&big, [16, 16], &weights(4, 9), &bias, linear)
                .unwrap()
                .is_none()
        );
        // Dilated.
        let mut dilated = conv(4, 3, 1, PaddingSpec::SameUpper);
        dilated.pool_spec.dilations = Some(tvec![2, 2]);
        assert!(
            DepthwiseChannelsLast::for_conv(&dilated, [16, 16], &weights(4, 3), &bias, linear)
                .unwrap()
                .is_none()
        );
        // Not depthwise: two input channels per group.
        let mut grouped = conv(4, 3, 1, PaddingSpec::SameUpper);
        grouped.pool_spec.input_channels = 8;
        assert!(
            DepthwiseChannelsLast::for_conv(&grouped, [16, 16], &weights(4, 3), &bias, linear)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_input_of_the_wrong_shape_is_an_error() {
        let conv = conv(8, 3, 1, PaddingSpec::SameUpper);
        let op = DepthwiseChannelsLast::for_conv(
            &conv,
            [5, 5],
            &tensor1(&values(72, 0)).into_shape(&[8, 1, 3, 3]).unwrap(),
            &tensor1(&values(8, 1)),
            Activation::Linear,
        )
        .unwrap()
        .unwrap();
        for shape in [vec![1, 5, 5, 7], vec![1, 8, 5, 5], vec![5, 8]] {
            let len = shape.iter().product();
            let x = tensor1(&values(len, 2)).into_shape(&shape).unwrap();
            let error = op
                .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
                .expect_err("a wrong shape is refused");
            assert!(format!("{error:#}").contains("expects"), "{error:#}");
        }
    }
}
