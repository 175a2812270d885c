//! What our three convolutions (the stem, the depthwise and the 1×1 ones)
//! share as tract ops: one f32 map in, constant weights and bias, the
//! output written channels-last, map by map. Each op says only what
//! differs — its shapes and its arithmetic — and its `EvalOp` and
//! `TypedOp` impls call [`eval`] and [`output_facts`].

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// One of our convolutions, as [`eval`] and [`output_facts`] need it.
pub(crate) trait ChannelsLastConv {
    /// How errors name the op, e.g. "depthwise convolution".
    const WHAT: &'static str;

    /// The weights, f32, in the layout [`convolve`](Self::convolve) reads,
    /// and one bias per output channel.
    fn weights_and_bias(&self) -> (&Tensor, &Tensor);

    /// The output shape for an input of `shape`, or why the input does not fit.
    fn output_shape(&self, shape: &[usize]) -> TractResult<TVec<usize>>;

    /// How many values one input map and one output map hold, for an
    /// input of `input` and an output of `output`: the unit
    /// [`convolve`](Self::convolve) is called on.
    fn map_lens(&self, input: &[usize], output: &[usize]) -> (usize, usize);

    /// Writes all of `out` from `map`.
    fn convolve(&self, weights: &[f32], bias: &[f32], map: &[f32], out: &mut [f32]);
}

/// `impl EvalOp for $op`, stateless, through [`eval`].
macro_rules! eval_op {
    ($op:ty) => {
        impl EvalOp for $op {
            op_out_of_plan!();

            fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                $crate::channels_last::eval(self, inputs)
            }
        }
    };
}
pub(crate) use eval_op;

/// `EvalOp::eval` for any of our convolutions.
pub(crate) fn eval<C: ChannelsLastConv>(op: &C, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
    let input = args_1!(inputs);
    ensure!(
        input.datum_type() == f32::datum_type(),
        "{} expects f32, got {:?}",
        C::WHAT,
        input.datum_type()
    );
    let shape = op.output_shape(input.shape())?;
    let (weights, bias) = op.weights_and_bias();
    let weights = weights.try_as_plain_ram()?;
    let weights = weights.as_slice::<f32>()?;
    let bias = bias.try_as_plain_ram()?;
    let bias = bias.as_slice::<f32>()?;
    let (input_len, output_len) = op.map_lens(input.shape(), &shape);
    map_by_map(&input, &shape, input_len, output_len, |map, out| {
        op.convolve(weights, bias, map, out)
    })
}

/// `TypedOp::output_facts` for any of our convolutions: one f32 input of a
/// known shape.
pub(crate) fn output_facts<C: ChannelsLastConv>(
    op: &C,
    inputs: &[&TypedFact],
) -> TractResult<TVec<TypedFact>> {
    ensure!(inputs.len() == 1, "{} takes one input", C::WHAT);
    ensure!(
        inputs[0].datum_type == f32::datum_type(),
        "{} expects f32, got {:?}",
        C::WHAT,
        inputs[0].datum_type
    );
    let shape = inputs[0]
        .shape
        .as_concrete()
        .with_context(|| format!("{} needs a concrete input shape", C::WHAT))?;
    Ok(tvec!(f32::fact(op.output_shape(shape)?)))
}

/// The output of `shape` made by `convolve` from `input`, one map of
/// `input_len` values into `output_len` values at a time, whatever the
/// leading axes hold.
fn map_by_map(
    input: &Tensor,
    shape: &[usize],
    input_len: usize,
    output_len: usize,
    mut convolve: impl FnMut(&[f32], &mut [f32]),
) -> TractResult<TVec<TValue>> {
    let mut output = Tensor::zero::<f32>(shape)?;
    {
        let input = input.try_as_plain_ram()?;
        let input = input.as_slice::<f32>()?;
        let mut output = output.try_as_plain_ram_mut()?;
        let output = output.as_slice_mut::<f32>()?;
        for (map, out) in input
            .chunks_exact(input_len)
            .zip(output.chunks_exact_mut(output_len))
        {
            convolve(map, out);
        }
    }
    Ok(tvec!(output.into_tvalue()))
}
