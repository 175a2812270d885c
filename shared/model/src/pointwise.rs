//! The backbone's 1×1 convolutions (and its logits, one over a single
//! point), channels-last: one matrix product
//! (points × input channels by input channels × output channels) through the
//! [`gemm`] crate, with the bias and the ReLU6 that follows added strip by
//! strip while the strip is still in the cache.
//!
//! Why our own op: tract 0.23.9's matrix kernels cost about the same per
//! output tile whatever the length of the product (MODEL.md, "Speed"), so
//! the expansions that open each block at high resolution, 16 or 24 input
//! channels over 12,544–16,900 points, took it 2–2.5 times as long as
//! onnxruntime; `gemm`'s kernels scale with the work, and they beat tract's
//! on the long products too, with AVX-512 and with AVX2 alike (Lite2: 24.3
//! ms an inference with every 1×1 convolution ours, 30.1 with the short ones
//! only, 32.4 with none, on an AMD EPYC; 23.8–24.6, 26.7–28.1 and 27.9–30.0
//! with both libraries held to AVX2). `gemm` chooses its kernel (AVX-512,
//! AVX2 with FMA, or plain) for the CPU found at run time; [`takes`] follows
//! that choice.

use std::fmt;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::channels_last::{self, ChannelsLastConv};
use super::depthwise::Activation;

/// Where `gemm` has no vector kernels for this CPU (x86_64 without AVX2
/// and FMA) or they were not measured (other architectures), 1×1
/// convolutions reading more channels than this stay with tract: `gemm`
/// was first measured faster only on short products (16,900 points × 16 →
/// 96 channels: 0.77 against 1.79 ms; × 32: 1.34 against 1.88; × 208: 0.53
/// against 0.35, MODEL.md "Speed").
pub const SHORT_PRODUCT_CHANNELS: usize = 48;

/// Whether this op computes a 1×1 convolution reading `input_channels` on
/// this CPU rather than tract.
pub fn takes(input_channels: usize) -> bool {
    vector_kernels() || input_channels <= SHORT_PRODUCT_CHANNELS
}

/// Whether `gemm` runs its AVX-512 or its AVX2+FMA kernels here (it checks
/// the same flags). Both beat tract's on every 1×1 convolution of both
/// backbones: with AVX-512, and with both libraries held to AVX2 (tract by
/// `TRACT_CPU_ISA=-avx512f`, `gemm` built without `x86-v4`; MODEL.md, "Our
/// own 1×1 convolutions").
fn vector_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            || (std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Points per product: at the high resolutions, where the maps are large
/// and the channels few (at most 144 there), a strip's output stays in a
/// core's L2 cache between the product and the bias pass; the late maps
/// (81–289 points) take one or two products, so the weights are not packed
/// again for each strip.
const STRIP_POINTS: usize = 256;

/// A 1×1 convolution over channels-last maps (`[.., points.., input
/// channels]`), weights and bias held by the op.
#[derive(Clone, PartialEq, Eq)]
pub struct PointwiseChannelsLast {
    input_channels: usize,
    output_channels: usize,
    /// `[input_channels, output_channels]`: the product's right-hand side,
    /// row by row.
    weights: Arc<Tensor>,
    /// `[output_channels]`.
    bias: Arc<Tensor>,
    activation: Activation,
}

impl fmt::Debug for PointwiseChannelsLast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PointwiseChannelsLast")
            .field("input_channels", &self.input_channels)
            .field("output_channels", &self.output_channels)
            .field("activation", &self.activation)
            .finish_non_exhaustive()
    }
}

impl PointwiseChannelsLast {
    /// The op for weights `[output_channels, input_channels]` and a bias of
    /// one value per output channel (or one for all), or `None` when they
    /// are not float or do not fit together.
    pub fn new(
        weights_oi: &Tensor,
        bias: &Tensor,
        activation: Activation,
    ) -> TractResult<Option<Self>> {
        if weights_oi.datum_type() != f32::datum_type()
            || bias.datum_type() != f32::datum_type()
            || weights_oi.rank() != 2
        {
            return Ok(None);
        }
        let (output_channels, input_channels) = (weights_oi.shape()[0], weights_oi.shape()[1]);
        if input_channels == 0
            || output_channels == 0
            || !(bias.len() == 1 || bias.len() == output_channels)
        {
            return Ok(None);
        }
        let weights_io = weights_oi.clone().permute_axes(&[1, 0])?;
        let bias_values = bias.try_as_plain_ram()?;
        let bias_values = bias_values.as_slice::<f32>()?;
        let bias_values = if bias_values.len() == 1 {
            vec![bias_values[0]; output_channels]
        } else {
            bias_values.to_vec()
        };
        Ok(Some(Self {
            input_channels,
            output_channels,
            weights: Arc::new(weights_io),
            bias: Arc::new(tensor1(&bias_values)),
            activation,
        }))
    }
}

impl Op for PointwiseChannelsLast {
    fn name(&self) -> StaticName {
        "CatdogPointwiseChannelsLast".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![
            format!(
                "{} → {} channels",
                self.input_channels, self.output_channels
            ),
            format!("{:?}", self.activation),
        ])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

channels_last::eval_op!(PointwiseChannelsLast);

impl ChannelsLastConv for PointwiseChannelsLast {
    const WHAT: &'static str = "1×1 convolution";

    fn weights_and_bias(&self) -> (&Tensor, &Tensor) {
        (&self.weights, &self.bias)
    }

    fn output_shape(&self, shape: &[usize]) -> TractResult<TVec<usize>> {
        ensure!(
            shape.last() == Some(&self.input_channels),
            "1×1 convolution expects [.., {}], got {shape:?}",
            self.input_channels
        );
        let mut output: TVec<usize> = shape.into();
        *output.last_mut().expect("checked above") = self.output_channels;
        Ok(output)
    }

    /// Every point is a map of its own, so the whole tensor is one: it goes
    /// to `gemm` in strips of [`STRIP_POINTS`] points.
    fn map_lens(&self, input: &[usize], output: &[usize]) -> (usize, usize) {
        (input.iter().product(), output.iter().product())
    }

    fn convolve(&self, weights: &[f32], bias: &[f32], map: &[f32], out: &mut [f32]) {
        let (ci, co) = (self.input_channels, self.output_channels);
        for (x, out) in map
            .chunks(STRIP_POINTS * ci)
            .zip(out.chunks_mut(STRIP_POINTS * co))
        {
            multiply(x, weights, ci, co, out);
            finish(out, bias, self.activation);
        }
    }
}

/// `out = x · w` for `x` of `points × ci` and `w` of `ci × co`, all row by row.
fn multiply(x: &[f32], w: &[f32], ci: usize, co: usize, out: &mut [f32]) {
    let points = x.len() / ci;
    assert!(
        x.len() == points * ci && w.len() == ci * co && out.len() == points * co,
        "1×1 convolution: {} inputs, {} weights and {} outputs do not fit {ci} → {co} channels",
        x.len(),
        w.len(),
        out.len()
    );
    // SAFETY: the three pointers cover `points × ci`, `ci × co` and
    // `points × co` values with the row strides given (checked above);
    // `out` is borrowed mutably, so it overlaps neither input, and with
    // `read_dst` false `gemm` writes it without reading it.
    unsafe {
        gemm::gemm(
            points,
            co,
            ci,
            out.as_mut_ptr(),
            1,
            co as isize,
            false,
            x.as_ptr(),
            1,
            ci as isize,
            w.as_ptr(),
            1,
            co as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Adds the bias to every point of `out` and applies the activation.
fn finish(out: &mut [f32], bias: &[f32], activation: Activation) {
    for point in out.chunks_exact_mut(bias.len()) {
        for (value, b) in point.iter_mut().zip(bias) {
            *value += b;
        }
        if activation == Activation::Relu6 {
            for value in point.iter_mut() {
                *value = value.clamp(0.0, 6.0);
            }
        }
    }
}

impl TypedOp for PointwiseChannelsLast {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        channels_last::output_facts(self, inputs)
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = inputs[0].shape.volume() / (self.input_channels as i64);
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            points * (self.input_channels * self.output_channels) as i64
        )))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1), different for each `seed`.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2000) as f32) / 1000.0 - 1.0)
            .collect()
    }

    /// The convolution written out directly: every point, every output
    /// channel, the bias then one product per input channel.
    fn direct(
        x: &[f32],
        w_oi: &[f32],
        bias: &[f32],
        ci: usize,
        co: usize,
        relu6: bool,
    ) -> Vec<f32> {
        let mut out = Vec::new();
        for point in x.chunks_exact(ci) {
            for o in 0..co {
                let mut sum = bias[o];
                for i in 0..ci {
                    sum += w_oi[o * ci + i] * point[i];
                }
                out.push(if relu6 { sum.clamp(0.0, 6.0) } else { sum });
            }
        }
        out
    }

    /// The op's output for `x` of `shape`: its shape and its values.
    fn run(op: &PointwiseChannelsLast, shape: &[usize], x: &[f32]) -> (Vec<usize>, Vec<f32>) {
        let input = Tensor::from_shape(shape, x).unwrap();
        let mut outputs = op
            .eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue()))
            .unwrap();
        let output = outputs.remove(0);
        let values = output
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        (output.shape().to_vec(), values)
    }

    #[test]
    fn computes_the_convolution_over_every_strip_and_channel() {
        // Points not a multiple of the strip, channels not of any vector
        // width, short and long products, a batch axis and none.
        let cases: [(&[usize], usize, usize); 5] = [
            (&[1, 3, 5], 16, 24),
            (&[17, 19], 24, 144),
            (&[1, 9, 9], 1248, 208),
            (&[2, 20, 31], 5, 7),
            (&[1, 1], 1280, 1000),
        ];
        for (case, (points_shape, ci, co)) in cases.into_iter().enumerate() {
            let points: usize = points_shape.iter().product();
            let x = values(points * ci, case);
            let w = values(co * ci, case + 10);
            let bias = values(co, case + 20);
            let weights = Tensor::from_shape(&[co, ci], &w).unwrap();
            for activation in [Activation::Linear, Activation::Relu6] {
                let op = PointwiseChannelsLast::new(&weights, &tensor1(&bias), activation)
                    .unwrap()
                    .expect("a float 1×1 convolution");
                let mut shape = points_shape.to_vec();
                shape.push(ci);
                let (got_shape, got) = run(&op, &shape, &x);
                let mut want_shape = points_shape.to_vec();
                want_shape.push(co);
                assert_eq!(got_shape, want_shape, "case {case}");
                let want = direct(&x, &w, &bias, ci, co, activation == Activation::Relu6);
                // Sums of up to 1,280 products of values below 1, added in
                // another order: a few units in the last place of the sum.
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-3,
                    "case {case}, {activation:?}: off by up to {worst:.2e}"
                );
                if activation == Activation::Relu6 {
                    assert!(got.iter().all(|v| (0.0..=6.0).contains(v)), "case {case}");
                    assert!(got.contains(&0.0), "case {case}: nothing clamped");
                }
            }
        }
    }

    #[test]
    fn one_bias_serves_every_channel_and_nan_stays_nan() {
        let weights = Tensor::from_shape(&[2, 1], &[1.0f32, -1.0]).unwrap();
        let op = PointwiseChannelsLast::new(&weights, &tensor1(&[0.5f32]), Activation::Relu6)
            .unwrap()
            .unwrap();
        let (_, got) = run(&op, &[3, 1], &[2.0, 10.0, f32::NAN]);
        assert_eq!(&got[..4], &[2.5, 0.0, 6.0, 0.0]);
        assert!(got[4].is_nan() && got[5].is_nan(), "{got:?}");
    }

    #[test]
    fn refuses_what_it_does_not_compute() {
        let weights = Tensor::from_shape(&[2, 3], &[0.0f32; 6]).unwrap();
        let three = tensor1(&[0.0f32; 3]);
        assert!(
            PointwiseChannelsLast::new(&weights, &three, Activation::Linear)
                .unwrap()
                .is_none()
        );
        let ints = Tensor::from_shape(&[2, 3], &[0i32; 6]).unwrap();
        assert!(
            PointwiseChannelsLast::new(&ints, &tensor1(&[0.0f32]), Activation::Linear)
                .unwrap()
                .is_none()
        );
        let op = PointwiseChannelsLast::new(&weights, &tensor1(&[0.0f32]), Activation::Linear)
            .unwrap()
            .unwrap();
        let wrong = Tensor::from_shape(&[2, 2], &[0.0f32; 4]).unwrap();
        let error = op
            .eval(&EvalContext::out_of_plan(), tvec!(wrong.into_tvalue()))
            .unwrap_err();
        assert!(format!("{error}").contains("expects [.., 3]"), "{error}");
        assert!(takes(SHORT_PRODUCT_CHANNELS));
    }
}
