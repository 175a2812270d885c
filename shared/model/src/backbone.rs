//! The EfficientNet-Lite backbones (Lite0 and Lite2 as served), run with tract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{AxisOp, TypedModelPatch};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, PoolSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_core::plan::{SimpleState, eval};

use super::ModelError;
use super::depthwise::{Activation, DepthwiseChannelsLast};
use super::pointwise::{self, PointwiseChannelsLast};
use super::preprocess::{InputGeometry, ModelInput};
use super::stem::StemChannelsLast;

pub const BACKBONE_FILE: &str = "backbone.onnx";
pub const IMAGENET_CLASSES: usize = 1000;
pub const FEATURES: usize = 1280;

/// What the backbone says about one picture.
#[derive(Clone, Debug)]
pub struct BackboneOutput {
    /// The 1000 ImageNet logits.
    pub logits: Vec<f32>,
    /// The 1280 pooled features the cat/dog head reads.
    pub features: Vec<f32>,
}

/// The optimised model plan; running it takes `&self`, so one instance serves
/// every thread of the process.
pub struct Backbone {
    plan: Arc<TypedRunnableModel>,
    logits_output: usize,
    features_output: usize,
    geometry: InputGeometry,
}

impl Backbone {
    /// Loads and optimises `path` for one picture at a time, at the input
    /// side the model declares.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let optimized = OptimizedBackbone::load(path)?;
        let plan = optimized
            .model
            .into_runnable()
            .map_err(|e| load_error(path, e))?;
        Ok(Self {
            plan,
            logits_output: optimized.logits_output,
            features_output: optimized.features_output,
            geometry: optimized.geometry,
        })
    }

    /// The square this backbone reads; [`crate::preprocess`] makes it.
    pub fn geometry(&self) -> InputGeometry {
        self.geometry
    }

    pub fn run(&self, input: &ModelInput) -> Result<BackboneOutput, ModelError> {
        let inference = |e: TractError| ModelError::Inference(format!("{e:#}"));
        let outputs = run_plan(&self.plan, input.0.clone().into_tvalue()).map_err(inference)?;
        let flat = |index: usize, len: usize| -> Result<Vec<f32>, ModelError> {
            let values = outputs
                .get(index)
                .ok_or_else(|| ModelError::Inference(format!("output {index} is missing")))?
                .to_plain_array_view::<f32>()
                .map_err(inference)?;
            if values.len() != len {
                return Err(ModelError::Inference(format!(
                    "output {index} has {} values, expected {len}",
                    values.len()
                )));
            }
            Ok(values.iter().copied().collect())
        };
        Ok(BackboneOutput {
            logits: flat(self.logits_output, IMAGENET_CLASSES)?,
            features: flat(self.features_output, FEATURES)?,
        })
    }
}

/// Runs `plan` on one input as the classifier does: node by node, ending the
/// wide-vector state after each (see [`clear_upper_vector_state`]).
///
/// Inside an inference, tract's AVX kernels (matrix products, channels-first
/// depthwise convolutions) alternate with ops compiled for baseline x86-64
/// (the channels-last depthwise loop, ReLU6, packing). Each of those paid the
/// state-transition penalty of the kernel before it; one `vzeroupper` per
/// node (about 60 of them) is far cheaper. Measured with
/// `shared/benches/tract_speed.rs --plain-run` against the default, on an
/// AMD EPYC (AVX-512), one thread, three rounds of 30: 19.2–20.3 ms of CPU
/// time per inference without, 16.6–17.4 ms with (MODEL.md, "Speed").
pub fn run_plan(plan: &Arc<TypedRunnableModel>, input: TValue) -> TractResult<TVec<TValue>> {
    let mut state = SimpleState::new(plan)?;
    state.run_plan_with_eval(tvec!(input), |ctx, op_state, node, inputs| {
        let outputs = eval(ctx, op_state, node, inputs);
        clear_upper_vector_state();
        outputs
    })
}

/// Ends the CPU's wide-vector state that tract's kernels leave behind.
///
/// tract's hand-written AVX and AVX-512 kernels return without a
/// `vzeroupper`, so the upper halves of the vector registers stay dirty.
/// Until one is executed, every legacy SSE instruction pays for that state,
/// and everything after an inference is SSE: this crate and its
/// dependencies are built for baseline x86-64 (so are libm's `roundf` that
/// the image crate's resize calls per sample). Measured on the bench's AMD
/// EPYC: the thumbnail of a 500×377 photo took 16.3 ms right after an
/// inference and 6.2 ms with this call in between, as it does alone.
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `vzeroupper` needs AVX, which the CPU was just checked
        // for; it changes no memory and no register a caller relies on
        // (the ABI treats the upper halves as clobbered across calls).
        unsafe { std::arch::x86_64::_mm256_zeroupper() }
    }
}

/// The backbone as tract optimises it, before it is made runnable: what
/// [`Backbone`] runs, exposed so the speed benchmark can profile it op by op.
pub struct OptimizedBackbone {
    pub model: TypedModel,
    /// Position of the `logits` output among the model's outputs.
    pub logits_output: usize,
    /// Position of the `features` output among the model's outputs.
    pub features_output: usize,
    /// The input the model declares, [1, 3, side, side].
    pub geometry: InputGeometry,
}

/// What runs the stem and the depthwise convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvolutionKernels {
    /// What the classifier runs: this crate's own ops, channels-last with
    /// the ReLU6 fused, vectorised for the CPU found at run time
    /// ([`crate::stem`], [`crate::depthwise`]).
    Ours,
    /// tract's own ops, its stem, and its depthwise convolutions
    /// channels-last where tract is faster that way (see
    /// `depthwise_channels_last`), channels-first elsewhere: what the
    /// classifier ran before, kept for the speed benchmark's comparison.
    TractMixed,
    /// tract's own choice, all channels-first: kept for the same comparison.
    TractChannelsFirst,
}

impl OptimizedBackbone {
    /// The model as the classifier runs it.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::load_with(path, ConvolutionKernels::Ours)
    }

    pub fn load_with(path: &Path, kernels: ConvolutionKernels) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Missing {
                path: path.to_path_buf(),
            });
        }
        let parsed = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| load_error(path, e))?;
        let side = declared_input_side(&parsed).ok_or_else(|| ModelError::Load {
            path: path.to_path_buf(),
            reason: "the model does not declare a [1, 3, side, side] input".into(),
        })?;
        // Outputs are found by their ONNX names; optimisation keeps their order.
        let output_index = |name: &str| {
            let outlets = parsed.output_outlets().unwrap_or(&[]);
            outlets
                .iter()
                .position(|o| {
                    parsed.outlet_label(*o) == Some(name) || parsed.node(o.node).name == name
                })
                .ok_or_else(|| ModelError::Load {
                    path: path.to_path_buf(),
                    reason: format!("the model has no output named {name:?}"),
                })
        };
        let logits_output = output_index("logits")?;
        let features_output = output_index("features")?;
        let model = parsed
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .and_then(|mut m| {
                match kernels {
                    ConvolutionKernels::Ours => convolutions_ours(&mut m)?,
                    ConvolutionKernels::TractMixed => depthwise_channels_last(&mut m)?,
                    ConvolutionKernels::TractChannelsFirst => {}
                }
                // Folds the layout moves into the neighbouring 1×1 convolutions.
                m.declutter()?;
                m.optimize()?;
                Ok(m)
            })
            .map_err(|e| load_error(path, e))?;
        Ok(Self {
            model,
            logits_output,
            features_output,
            geometry: InputGeometry::for_side(side as u32),
        })
    }
}

/// The side of the square input the ONNX file declares, if it declares one
/// picture of three channels.
fn declared_input_side(model: &InferenceModel) -> Option<usize> {
    let shape = model
        .input_fact(0)
        .ok()?
        .shape
        .as_concrete_finite()
        .ok()??;
    match shape.as_slice() {
        [1, 3, h, w] if h == w && (32..=1024).contains(h) => Some(*h),
        _ => None,
    }
}

/// Replaces the convolutions tract would run with this crate's own ops where
/// they compute them: the stem, the convolution of the picture's three colour
/// planes ([`StemChannelsLast`], read channels-first as the preprocessing
/// writes it), every depthwise convolution ([`DepthwiseChannelsLast`]) and
/// the 1×1 convolutions and the logits ([`PointwiseChannelsLast`]), both
/// read channels-last, each taking in the ReLU6 that follows it and writing
/// channels-last. Layout moves go around each one; the declutter after this
/// cancels those between two of our ops, folds the others into tract's
/// remaining 1×1 convolutions, and cancels the stem's against the first
/// depthwise convolution's, so the plan runs channels-last from the stem on
/// with no transpose left (the pooling reads channels-last). What the ops
/// cannot compute (dilations, kernels over 7×7, non-constant weights, a stem
/// of more than four input channels, long 1×1 products where `gemm` has
/// no vector kernels, see [`pointwise::takes`]) stays with tract.
fn convolutions_ours(model: &mut TypedModel) -> TractResult<()> {
    for id in model.eval_order()? {
        let Some(ours) = OurOp::for_node(model, id)? else {
            continue;
        };
        let node = model.node(id);
        let name = node.name.clone();
        let last = ours.rank - 1;
        let mut patch = TypedModelPatch::default();
        let mut x = patch.tap_model(model, node.inputs[0])?;
        for (i, axis) in ours.dropped.iter().enumerate().rev() {
            x = patch.wire_node(format!("{name}.drop_axis.{i}"), AxisOp::Rm(*axis), &[x])?[0];
        }
        if ours.reads_channels_last {
            x = patch.wire_node(
                format!("{name}.channels_last"),
                AxisOp::Move(ours.c_axis, last),
                &[x],
            )?[0];
        }
        let y = patch.wire_node(&name, ours.op, &[x])?;
        let mut y = patch.wire_node(
            format!("{name}.channels_first"),
            AxisOp::Move(last, ours.c_axis),
            &y,
        )?[0];
        for (i, axis) in ours.added.iter().enumerate() {
            y = patch.wire_node(format!("{name}.add_axis.{i}"), AxisOp::Add(*axis), &[y])?[0];
        }
        patch.shunt_outside(model, ours.output, y)?;
        patch.apply(model)?;
    }
    Ok(())
}

/// One of our ops in place of the convolution at a node.
struct OurOp {
    op: Box<dyn TypedOp>,
    /// Whether it reads channels-last (all write channels-last).
    reads_channels_last: bool,
    /// The channel axis, and the rank, of its input once `dropped` is gone;
    /// its output has them too, until `added`.
    c_axis: usize,
    rank: usize,
    /// Unit axes of the convolution's input to remove first, ascending.
    dropped: TVec<usize>,
    /// Unit axes to insert last, ascending.
    added: TVec<usize>,
    /// The outlet its result replaces: the ReLU6's, or the convolution's.
    output: OutletId,
}

impl OurOp {
    fn for_node(model: &TypedModel, id: usize) -> TractResult<Option<Self>> {
        if let Some(site) = ConvSite::of(model, id)? {
            let (conv, hw, activation) = (&site.conv, site.input_hw, site.activation());
            let (kernel, bias) = (&site.kernel, &site.bias);
            let (op, reads_channels_last): (Box<dyn TypedOp>, bool) = if let Some(stem) =
                StemChannelsLast::for_conv(conv, hw, kernel, bias, activation)?
            {
                (Box::new(stem), false)
            } else if let Some(depthwise) =
                DepthwiseChannelsLast::for_conv(conv, hw, kernel, bias, activation)?
            {
                (Box::new(depthwise), true)
            } else {
                return Ok(None);
            };
            return Ok(Some(Self {
                op,
                reads_channels_last,
                c_axis: site.c_axis,
                rank: site.rank,
                dropped: tvec!(),
                added: tvec!(),
                output: site.output,
            }));
        }
        let Some(site) = PointwiseSite::of(model, id)? else {
            return Ok(None);
        };
        let activation = activation_of(site.relu6);
        if !pointwise::takes(site.weights.shape()[1]) {
            return Ok(None);
        }
        let Some(op) = PointwiseChannelsLast::new(&site.weights, &site.bias, activation)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            op: Box::new(op),
            reads_channels_last: true,
            c_axis: site.c_axis,
            rank: site.rank,
            dropped: site.dropped,
            added: site.added,
            output: site.relu6.or(site.bias_added).unwrap_or(id.into()),
        }))
    }
}

/// A float 1×1 convolution as tract's declutter leaves it: an `EinSum` of
/// the map with constant weights, summing over the map's channel axis and
/// putting the output channels in its place, then the bias added to the
/// result, then maybe a ReLU6.
struct PointwiseSite {
    /// The channel axis, and the rank, of the map without `dropped`.
    c_axis: usize,
    rank: usize,
    /// Unit axes the map has and the output does not, by position.
    dropped: TVec<usize>,
    /// Unit axes the output has and the map does not, by position.
    added: TVec<usize>,
    /// `[output_channels, input_channels]`.
    weights: Tensor,
    /// `[output_channels]`, or one value for all (zero when no bias is added).
    bias: Tensor,
    /// The output of the addition of the bias, if there is one.
    bias_added: Option<OutletId>,
    relu6: Option<OutletId>,
}

impl PointwiseSite {
    fn of(model: &TypedModel, id: usize) -> TractResult<Option<Self>> {
        let node = model.node(id);
        let Some(einsum) = node.op_as::<EinSum>() else {
            return Ok(None);
        };
        if einsum.q_params.is_some()
            || einsum.operating_dt != f32::datum_type()
            || node.inputs.len() != 2
        {
            return Ok(None);
        }
        let input = model.outlet_fact(node.inputs[0])?;
        let Some(weights) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
            return Ok(None);
        };
        let rank = input.rank();
        if input.datum_type != f32::datum_type() || weights.rank() != 2 || rank < 2 {
            return Ok(None);
        }
        // Every axis of the map goes to the output in order, but the channel
        // axis, which the weights sum over and replace with theirs, and unit
        // axes that only the map or only the output has (declutter leaves
        // the batch axis on some of them).
        let (mut summed, mut produced) = (None, None);
        let mut carried = TVec::<(usize, usize)>::new();
        let (mut dropped, mut added) = (TVec::new(), TVec::new());
        for axis in einsum.axes.iter_all_axes() {
            match (&*axis.inputs[0], &*axis.inputs[1], &*axis.outputs[0]) {
                (&[map], &[weight], &[]) if summed.is_none() => summed = Some((map, weight)),
                (&[], &[weight], &[out]) if produced.is_none() => produced = Some((out, weight)),
                (&[map], &[], &[out]) => carried.push((map, out)),
                (&[map], &[], &[]) => dropped.push(map),
                (&[], &[], &[out]) => added.push(out),
                _ => return Ok(None),
            }
        }
        let (Some((c_axis, input_slot)), Some((out_axis, output_slot))) = (summed, produced) else {
            return Ok(None);
        };
        let output = model.outlet_fact(id.into())?;
        let unit = |shape: &ShapeFact, axes: &[usize]| axes.iter().all(|&a| shape[a] == 1.to_dim());
        if !unit(&input.shape, &dropped)
            || !unit(&output.shape, &added)
            || input_slot == output_slot
        {
            return Ok(None);
        }
        dropped.sort_unstable();
        added.sort_unstable();
        let skipping = |axes: &[usize], position: usize| {
            position - axes.iter().filter(|a| **a < position).count()
        };
        let c_axis = skipping(&dropped, c_axis);
        let in_order = skipping(&added, out_axis) == c_axis
            && carried
                .iter()
                .all(|&(map, out)| skipping(&dropped, map) == skipping(&added, out));
        if !in_order {
            return Ok(None);
        }
        let weights = if output_slot == 0 {
            (*weights).clone()
        } else {
            (*weights).clone().permute_axes(&[1, 0])?
        };
        let output_channels = weights.shape()[0];
        let (bias, bias_added) = match sole_consumer(model, id.into(), "Add")? {
            Some((added, other)) => {
                let fact = model.outlet_fact(other)?;
                let Some(bias) = fact.konst.as_ref() else {
                    return Ok(None);
                };
                // One value per output channel along the channel axis, or one for all.
                let along_channels = bias.rank() == output.rank()
                    && bias.shape().iter().enumerate().all(|(axis, &len)| {
                        len == 1 || (axis == out_axis && len == output_channels)
                    });
                if !(bias.len() == 1 || along_channels) {
                    return Ok(None);
                }
                ((**bias).clone().into_shape(&[bias.len()])?, Some(added))
            }
            None => (tensor1(&[0.0f32]), None),
        };
        let relu6 = relu6_after(model, bias_added.unwrap_or(id.into()))?;
        Ok(Some(Self {
            c_axis,
            rank: rank - dropped.len(),
            dropped,
            added,
            weights,
            bias,
            bias_added,
            relu6,
        }))
    }
}

/// A channels-first 2-D convolution with constant kernel and bias, as our
/// ops take it over: what they need to know of it and where its result
/// ends, after the ReLU6 that follows it if one does.
struct ConvSite {
    conv: Conv,
    /// The channel axis of its input: 1 with a batch axis, 0 without
    /// (declutter drops the batch axis where it can, so both occur).
    c_axis: usize,
    rank: usize,
    input_hw: [usize; 2],
    kernel: Arc<Tensor>,
    bias: Arc<Tensor>,
    relu6: Option<OutletId>,
    /// The outlet our op's result replaces: the ReLU6's, or the convolution's.
    output: OutletId,
}

impl ConvSite {
    fn of(model: &TypedModel, id: usize) -> TractResult<Option<Self>> {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            return Ok(None);
        };
        let c_axis = match conv.pool_spec.data_format {
            DataFormat::NCHW => 1,
            DataFormat::CHW => 0,
            _ => return Ok(None),
        };
        if node.inputs.len() != 3 {
            return Ok(None);
        }
        let input = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = input.shape.as_concrete() else {
            return Ok(None);
        };
        let rank = shape.len();
        if rank != c_axis + 3 {
            return Ok(None);
        }
        let constant = |i: usize| model.outlet_fact(node.inputs[i]).map(|f| f.konst.clone());
        let (Some(kernel), Some(bias)) = (constant(1)?, constant(2)?) else {
            return Ok(None);
        };
        let relu6 = relu6_after(model, id.into())?;
        Ok(Some(Self {
            conv: conv.clone(),
            c_axis,
            rank,
            input_hw: [shape[rank - 2], shape[rank - 1]],
            kernel,
            bias,
            relu6,
            output: relu6.unwrap_or(id.into()),
        }))
    }

    fn activation(&self) -> Activation {
        activation_of(self.relu6)
    }
}

/// What our op applies after the sum, given what [`relu6_after`] found.
fn activation_of(relu6: Option<OutletId>) -> Activation {
    match relu6 {
        Some(_) => Activation::Relu6,
        None => Activation::Linear,
    }
}

/// Where the ReLU6 ends if `outlet` feeds one and nothing else: ONNX's
/// `Clip(0, 6)` as tract declutters it, `Max(x, 0)` then `Min(·, 6)`.
fn relu6_after(model: &TypedModel, outlet: OutletId) -> TractResult<Option<OutletId>> {
    let Some(max) = sole_consumer_with(model, outlet, "Max", 0.0)? else {
        return Ok(None);
    };
    sole_consumer_with(model, max, "Min", 6.0)
}

/// The output of the node that alone reads `outlet`, if that node is the
/// binary op `name` with the scalar `value` as its other operand.
fn sole_consumer_with(
    model: &TypedModel,
    outlet: OutletId,
    name: &str,
    value: f32,
) -> TractResult<Option<OutletId>> {
    let Some((output, other)) = sole_consumer(model, outlet, name)? else {
        return Ok(None);
    };
    let fact = model.outlet_fact(other)?;
    let scalar = fact
        .konst
        .as_ref()
        .or(fact.uniform.as_ref())
        .filter(|t| t.len() == 1 && t.datum_type() == f32::datum_type())
        .map(|t| t.cast_to_scalar::<f32>())
        .transpose()?;
    Ok((scalar == Some(value)).then_some(output))
}

/// The node that alone reads `outlet`, if it is the binary op `name`: its
/// output and its other operand.
fn sole_consumer(
    model: &TypedModel,
    outlet: OutletId,
    name: &str,
) -> TractResult<Option<(OutletId, OutletId)>> {
    if model.output_outlets()?.contains(&outlet) {
        return Ok(None);
    }
    let [consumer] = model.outlet_successors(outlet) else {
        return Ok(None);
    };
    let node = model.node(consumer.node);
    let Some(op) = node.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if op.0.name() != name || node.inputs.len() != 2 {
        return Ok(None);
    }
    Ok(Some((node.id.into(), node.inputs[1 - consumer.slot])))
}

/// Runs some depthwise convolutions channels-last (NHWC) instead of tract's
/// default channels-first, where tract 0.23.9 is faster that way on x86-64:
/// the strided ones, whose channels-first loop has no vector kernel for a
/// stride other than 1, and the ones on maps of at most 7×7, where
/// channels-first spends its time on border zones. The others stay
/// channels-first, whose AVX kernel beats the channels-last loop as long as
/// that loop is compiled for baseline x86-64 (SSE2); built for AVX2
/// (`-C target-cpu=x86-64-v3`) the channels-last loop wins everywhere, so
/// then every depthwise convolution runs channels-last. MODEL.md ("Speed")
/// has the measurements; the arithmetic, and so the result, is the same
/// either way.
fn depthwise_channels_last(model: &mut TypedModel) -> TractResult<()> {
    const SMALL_MAP_SIDE: usize = 7;
    const ALL: bool = cfg!(target_feature = "avx2");
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        let spec = &conv.pool_spec;
        let depthwise = node.inputs.len() == 3
            && conv.q_params.is_none()
            && conv.group > 1
            && conv.group == spec.input_channels
            && conv.group == spec.output_channels;
        // Declutter drops the batch axis where it can, so both ranks occur.
        let (channels_last, c_axis) = match spec.data_format {
            DataFormat::NCHW => (DataFormat::NHWC, 1),
            DataFormat::CHW => (DataFormat::HWC, 0),
            _ => continue,
        };
        let input = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = input.shape.as_concrete() else {
            continue;
        };
        let strided = spec.strides().iter().any(|s| *s > 1);
        let small_map = shape.last().is_some_and(|w| *w <= SMALL_MAP_SIDE);
        if !depthwise || !(ALL || strided || small_map) {
            continue;
        }
        let last = input.rank() - 1;
        let name = node.name.clone();
        let mut patch = TypedModelPatch::default();
        let inputs = patch.taps(model, &node.inputs)?;
        let x = patch.wire_node(
            format!("{name}.channels_last"),
            AxisOp::Move(c_axis, last),
            &[inputs[0]],
        )?;
        let nhwc = Conv {
            pool_spec: PoolSpec {
                data_format: channels_last,
                ..spec.clone()
            },
            ..conv.clone()
        };
        let y = nhwc.wire_as_depth_wise(&mut patch, &name, &[x[0], inputs[1], inputs[2]])?;
        let y = patch.wire_node(
            format!("{name}.channels_first"),
            AxisOp::Move(last, c_axis),
            &[y],
        )?;
        patch.shunt_outside(model, id.into(), y[0])?;
        patch.apply(model)?;
    }
    Ok(())
}

fn load_error(path: &Path, e: TractError) -> ModelError {
    ModelError::Load {
        path: PathBuf::from(path),
        reason: format!("{e:#}"),
    }
}
