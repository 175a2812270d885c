//! The backbone's first convolution (its stem), read channels-first as the
//! preprocessing writes the picture, written channels-last as the rest of
//! the plan runs, with the ReLU6 that follows it fused in, and the loop
//! compiled for the CPU found at run time.
//!
//! Why our own op: tract 0.23.9 runs the stem either as an im2col and a
//! matrix product (Lite0: k = 27 and m = 32, which its kernel picker sends
//! to a narrow FMA kernel, about 1.4 ms on an Intel Xeon) or as its direct
//! convolution (Lite2, 0.8 ms), and then makes two more passes over the
//! 32-channel map: the ReLU6, and the move to channels-last that our
//! depthwise op reads (0.4–0.9 ms together). Here all three are one pass.
//!
//! Each output value is the bias, then one multiply and one add per tap, input
//! channel by input channel, then row by row and column by column of the
//! kernel: the same order whatever the CPU, so every version of the loop
//! gives the same values (no fused multiply-add), and the unit test checks
//! them exactly against a direct convolution.

use std::fmt;
use std::sync::Arc;

use multiversion::multiversion;
use multiversion::target::target_cfg_f;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::Conv;

use crate::channels_last::{self, ChannelsLastConv};
use crate::depthwise::{Activation, Geometry, MAX_TAPS, each_block, finish};

/// Convolutions over more input channels than this stay with tract: the
/// loop broadcasts one input value per tap, which pays only while the input
/// is a picture's few colour planes.
pub const MAX_INPUT_CHANNELS: usize = 4;

/// Taps of one output point, every input channel: at most 4 × 7 × 7.
const MAX_POINT_TAPS: usize = MAX_INPUT_CHANNELS * MAX_TAPS;

/// A dense convolution of a few input channels, `[.., in, height, width]`
/// in and `[.., height, width, out]` out, weights and bias held by the op.
#[derive(Clone, PartialEq, Eq)]
pub struct StemChannelsLast {
    /// The output's sizes; `channels` is the number of output channels.
    geometry: Geometry,
    input_channels: usize,
    /// `[input_channels * kernel_height * kernel_width, channels]`: each
    /// tap's output channels are contiguous, as the inner loop reads them.
    weights: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    activation: Activation,
}

impl fmt::Debug for StemChannelsLast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StemChannelsLast")
            .field("input_channels", &self.input_channels)
            .field("geometry", &self.geometry)
            .field("activation", &self.activation)
            .finish_non_exhaustive()
    }
}

impl StemChannelsLast {
    /// The op for `conv` (a float convolution of one group over at most
    /// [`MAX_INPUT_CHANNELS`] channels-first input channels, with constant
    /// kernel and bias) reading a map of `input_hw`, or `None` when it is
    /// not one this op computes.
    pub fn for_conv(
        conv: &Conv,
        input_hw: [usize; 2],
        kernel: &Tensor,
        bias: &Tensor,
        activation: Activation,
    ) -> TractResult<Option<Self>> {
        let spec = &conv.pool_spec;
        let (input_channels, channels) = (spec.input_channels, spec.output_channels);
        if conv.q_params.is_some()
            || conv.group != 1
            || !(1..=MAX_INPUT_CHANNELS).contains(&input_channels)
            || channels == 0
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
        if taps == 0 || taps > MAX_TAPS || kernel.len() != channels * input_channels * taps {
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
        // [1, out, in, taps] whatever the kernel's own format.
        let grouped = conv.kernel_fmt.kernel_as_group_o_i_hw(kernel, 1)?;
        let grouped = grouped.try_as_plain_ram()?;
        let grouped = grouped.as_slice::<f32>()?;
        let per_output = input_channels * taps;
        let mut weights = vec![0.0f32; per_output * channels];
        for (o, of_output) in grouped.chunks_exact(per_output).enumerate() {
            for (t, w) in of_output.iter().enumerate() {
                weights[t * channels + o] = *w;
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
            input_channels,
            weights: Arc::new(tensor1(&weights).into_shape(&[per_output, channels])?),
            bias: Arc::new(tensor1(&bias_values)),
            activation,
        }))
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn input_len(&self) -> usize {
        self.input_channels * self.geometry.input_height * self.geometry.input_width
    }

    fn output_len(&self) -> usize {
        let g = &self.geometry;
        g.output_height * g.output_width * g.channels
    }
}

impl Op for StemChannelsLast {
    fn name(&self) -> StaticName {
        "CatdogStemChannelsLast".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![
            format!("input channels: {}", self.input_channels),
            format!("{:?}", self.geometry),
            format!("{:?}", self.activation),
        ])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

channels_last::eval_op!(StemChannelsLast);

impl ChannelsLastConv for StemChannelsLast {
    const WHAT: &'static str = "stem convolution";

    fn weights_and_bias(&self) -> (&Tensor, &Tensor) {
        (&self.weights, &self.bias)
    }

    fn output_shape(&self, shape: &[usize]) -> TractResult<TVec<usize>> {
        let g = &self.geometry;
        let rank = shape.len();
        ensure!(
            rank >= 3 && shape[rank - 3..] == [self.input_channels, g.input_height, g.input_width],
            "stem convolution expects [.., {}, {}, {}], got {shape:?}",
            self.input_channels,
            g.input_height,
            g.input_width
        );
        let mut output: TVec<usize> = shape.into();
        output[rank - 3] = g.output_height;
        output[rank - 2] = g.output_width;
        output[rank - 1] = g.channels;
        Ok(output)
    }

    fn map_lens(&self, _input: &[usize], _output: &[usize]) -> (usize, usize) {
        (self.input_len(), self.output_len())
    }

    fn convolve(&self, weights: &[f32], bias: &[f32], map: &[f32], out: &mut [f32]) {
        convolve(
            &self.geometry,
            self.input_channels,
            map,
            weights,
            bias,
            self.activation,
            out,
        )
    }
}

impl TypedOp for StemChannelsLast {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        channels_last::output_facts(self, inputs)
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let g = &self.geometry;
        let maps = inputs[0].shape.volume() / (self.input_len() as i64);
        let per_map = self.output_len() * self.input_channels * g.taps();
        Ok(tvec!((Cost::FMA(f32::datum_type()), maps * per_map as i64)))
    }

    as_op!();
}

/// The output columns whose kernel lies wholly inside the input: there,
/// neighbouring points read the same taps shifted by the stride.
fn interior_columns(g: &Geometry) -> std::ops::Range<usize> {
    let first = g.pad_left.div_ceil(g.stride_width);
    let end = match (g.input_width + g.pad_left).checked_sub(g.kernel_width) {
        Some(last_start) => (last_start / g.stride_width + 1).min(g.output_width),
        None => 0,
    };
    first..end.max(first)
}

/// The convolution of one picture, output point by output point; inside
/// the interior, several neighbouring points at a time, so that each weight
/// loaded serves several sums in flight (one point's sums each wait on the
/// add before them, tap after tap).
#[multiversion(targets(
    "x86_64+avx512f+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "aarch64+neon"
))]
fn convolve(
    g: &Geometry,
    input_channels: usize,
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    activation: Activation,
    output: &mut [f32],
) {
    // As in the depthwise loop: AVX-512 only with the Ice Lake extensions.
    let wide = target_cfg_f!(target_feature = "avx512f");
    let channels = g.channels;
    let plane = g.input_height * g.input_width;
    let interior = interior_columns(g);
    // (input offset, weight offset) of each tap inside the input.
    let mut taps = [(0usize, 0usize); MAX_POINT_TAPS];
    for oy in 0..g.output_height {
        let (iy0, ky0, rows) = g.rows(oy);
        let mut ox = 0;
        while ox < g.output_width {
            let (ix0, kx0, columns) = g.columns(ox);
            let mut count = 0;
            for ci in 0..input_channels {
                for ky in rows.clone() {
                    let iy = iy0 + (ky - ky0);
                    for kx in columns.clone() {
                        let ix = ix0 + (kx - kx0);
                        taps[count] = (
                            ci * plane + iy * g.input_width + ix,
                            ((ci * g.kernel_height + ky) * g.kernel_width + kx) * channels,
                        );
                        count += 1;
                    }
                }
            }
            let taps = &taps[..count];
            let start = (oy * g.output_width + ox) * channels;
            let step = g.stride_width;
            // For a block of 32 channels, four points hold 8 sums in the 32
            // AVX-512 registers, two points 8 sums in the 16 AVX2 ones.
            let group = if wide { 4 } else { 2 };
            if interior.contains(&ox) && ox + group <= interior.end {
                let out = &mut output[start..start + group * channels];
                if wide {
                    each_block!(wide, channels, c => points::<_, 4>(input, weights, bias, taps, step, c, activation, out));
                } else {
                    each_block!(wide, channels, c => points::<_, 2>(input, weights, bias, taps, step, c, activation, out));
                }
                ox += group;
            } else {
                let out = &mut output[start..start + channels];
                each_block!(wide, channels, c => points::<_, 1>(input, weights, bias, taps, step, c, activation, out));
                ox += 1;
            }
        }
    }
}

/// Output channels `c..c + N` of `P` neighbouring points, the `p`-th reading
/// each tap `p * step` further along the row. Inlined into each version of
/// [`convolve`], so it is compiled for the same CPU features.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn points<const N: usize, const P: usize>(
    input: &[f32],
    weights: &[f32],
    bias: &[f32],
    taps: &[(usize, usize)],
    step: usize,
    c: usize,
    activation: Activation,
    out: &mut [f32],
) {
    let channels = out.len() / P;
    let mut sums = [[0.0f32; N]; P];
    for sum in &mut sums {
        sum.copy_from_slice(&bias[c..c + N]);
    }
    for &(i, w) in taps {
        let k = &weights[w + c..w + c + N];
        for (p, sum) in sums.iter_mut().enumerate() {
            let x = input[i + p * step];
            for j in 0..N {
                sum[j] += k[j] * x;
            }
        }
    }
    for (p, sum) in sums.iter_mut().enumerate() {
        let start = p * channels + c;
        finish(sum, activation, &mut out[start..start + N]);
    }
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::ops::cnn::{KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    use super::*;

    /// The convolution written out directly: every output point, every
    /// output channel, every input channel and tap, zeros where the kernel
    /// overhangs the input.
    fn direct(
        g: &Geometry,
        input_channels: usize,
        input: &[f32],
        kernel_oihw: &[f32],
        bias: &[f32],
        relu6: bool,
    ) -> Vec<f32> {
        let mut out = Vec::new();
        for oy in 0..g.output_height {
            for ox in 0..g.output_width {
                for o in 0..g.channels {
                    let mut sum = bias[o];
                    for i in 0..input_channels {
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
                                let x = input[(i * g.input_height + iy as usize) * g.input_width
                                    + ix as usize];
                                let w = kernel_oihw[((o * input_channels + i) * g.kernel_height
                                    + ky)
                                    * g.kernel_width
                                    + kx];
                                sum += w * x;
                            }
                        }
                    }
                    out.push(if relu6 { sum.clamp(0.0, 6.0) } else { sum });
                }
            }
        }
        out
    }

    /// A `Conv` of one group as tract's ONNX loader makes it (channels-first,
    /// OIHW kernel).
    fn conv(
        inputs: usize,
        outputs: usize,
        kernel: usize,
        stride: usize,
        padding: PaddingSpec,
    ) -> Conv {
        Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![kernel, kernel],
                padding,
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: inputs,
                output_channels: outputs,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
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
        // The backbones' stems (3 → 32, 3×3, stride 2, padding after only,
        // and the padded input of "VALID"); output channel counts that use
        // the 64-wide blocks (AVX-512 only), the 32-wide ones, the 8-wide
        // ones and the scalar tail; rows narrower than the four points
        // summed together and maps smaller than the kernel.
        let cases = [
            (
                3,
                32,
                17,
                3,
                2,
                PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]),
            ),
            (3, 32, 19, 3, 2, PaddingSpec::Valid),
            (3, 32, 23, 3, 1, PaddingSpec::SameUpper),
            (1, 77, 12, 5, 1, PaddingSpec::SameUpper),
            (4, 13, 9, 7, 2, PaddingSpec::SameLower),
            (
                2,
                1,
                6,
                3,
                1,
                PaddingSpec::Explicit(tvec![2, 1], tvec![1, 2]),
            ),
            (3, 40, 3, 5, 1, PaddingSpec::SameUpper),
            (3, 96, 30, 3, 3, PaddingSpec::SameUpper),
        ];
        for (case, (inputs, outputs, side, kernel, stride, padding)) in
            cases.into_iter().enumerate()
        {
            let conv = conv(inputs, outputs, kernel, stride, padding);
            let weights = values(outputs * inputs * kernel * kernel, case);
            let kernel_tensor = tensor1(&weights)
                .into_shape(&[outputs, inputs, kernel, kernel])
                .unwrap();
            let bias = values(outputs, case + 100);
            for relu6 in [false, true] {
                let activation = if relu6 {
                    Activation::Relu6
                } else {
                    Activation::Linear
                };
                let op = StemChannelsLast::for_conv(
                    &conv,
                    [side, side],
                    &kernel_tensor,
                    &tensor1(&bias),
                    activation,
                )
                .unwrap()
                .expect("a convolution the op computes");
                let g = op.geometry();
                let input = values(inputs * side * side, case + 200);
                let x = tensor1(&input)
                    .into_shape(&[1, inputs, side, side])
                    .unwrap();
                let got = op
                    .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
                    .unwrap()
                    .remove(0);
                assert_eq!(
                    got.shape(),
                    &[1, g.output_height, g.output_width, outputs],
                    "case {case}"
                );
                let got = got.try_as_plain_ram().unwrap();
                let got = got.as_slice::<f32>().unwrap();
                let want = direct(&g, inputs, &input, &weights, &bias, relu6);
                // The same sums in the same order: equal, not merely close.
                assert_eq!(got, want.as_slice(), "case {case}, {g:?}, relu6 {relu6}");
            }
        }
    }

    #[test]
    fn what_it_does_not_compute_stays_with_tract() {
        let weights = |o: usize, i: usize, k: usize| {
            tensor1(&values(o * i * k * k, 0))
                .into_shape(&[o, i, k, k])
                .unwrap()
        };
        let bias = tensor1(&values(8, 1));
        let linear = Activation::Linear;
        // More input channels than a picture has.
        let wide = conv(16, 8, 3, 1, PaddingSpec::SameUpper);
        assert!(
            StemChannelsLast::for_conv(&wide, [16, 16], &weights(8, 16, 3), &bias, linear)
                .unwrap()
                .is_none()
        );
        // Grouped (a depthwise convolution of three channels, say).
        let mut grouped = conv(3, 3, 3, 1, PaddingSpec::SameUpper);
        grouped.group = 3;
        assert!(
            StemChannelsLast::for_conv(&grouped, [16, 16], &weights(3, 1, 3), &bias, linear)
                .unwrap()
                .is_none()
        );
        // Dilated, and a kernel over 7×7.
        let mut dilated = conv(3, 8, 3, 1, PaddingSpec::SameUpper);
        dilated.pool_spec.dilations = Some(tvec![2, 2]);
        assert!(
            StemChannelsLast::for_conv(&dilated, [16, 16], &weights(8, 3, 3), &bias, linear)
                .unwrap()
                .is_none()
        );
        let big = conv(3, 8, 9, 1, PaddingSpec::SameUpper);
        assert!(
            StemChannelsLast::for_conv(&big, [16, 16], &weights(8, 3, 9), &bias, linear)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_input_of_the_wrong_shape_is_an_error() {
        let conv = conv(3, 8, 3, 2, PaddingSpec::SameUpper);
        let op = StemChannelsLast::for_conv(
            &conv,
            [6, 6],
            &tensor1(&values(216, 0)).into_shape(&[8, 3, 3, 3]).unwrap(),
            &tensor1(&values(8, 1)),
            Activation::Linear,
        )
        .unwrap()
        .unwrap();
        for shape in [vec![1, 6, 6, 3], vec![1, 4, 6, 6], vec![6, 6]] {
            let len = shape.iter().product();
            let x = tensor1(&values(len, 2)).into_shape(&shape).unwrap();
            let error = op
                .eval(&EvalContext::out_of_plan(), tvec!(x.into_tvalue()))
                .expect_err("a wrong shape is refused");
            assert!(format!("{error:#}").contains("expects"), "{error:#}");
        }
    }
}
