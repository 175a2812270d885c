//! The backbone's speed through tract, one thread, for model/compare-speed.sh,
//! which runs onnxruntime on the same `backbone.onnx` in the same run.
//!
//!   cargo bench -p catdog --bench tract_speed -- [--runs N] [--warmup N]
//!       [--profile] [--tract-depthwise] [--channels-first] [--plain-run]
//!       [--backbone FILE]
//!
//! Prints one JSON line on stdout:
//! `{"engine":"tract","backbone":"backbone.onnx","load_ms":…,"median_ms":…,"cpu_ms":…,"times_ms":[…]}`,
//! where `load_ms` is the whole classifier's read + optimise + plan, every
//! backbone (the cold start of classify-image), the times are single inferences on the reference "ramp"
//! input (the one model/check_export.py uses; the cost does not depend on
//! the pixels) and `cpu_ms` is the mean CPU time of one of them.
//! With `--profile`, also prints to stderr where the time goes, per kind of
//! op and for the slowest nodes of the optimised model. With
//! `--tract-depthwise`, times tract's own stem and depthwise convolutions,
//! the latter in the layout the classifier chose for them before it ran its
//! own (engine "tract-depthwise"); with `--channels-first`, tract's own
//! layout for every depthwise convolution (engine "tract-channels-first"): together they
//! show what each step gains. With `--plain-run`, runs the plan as
//! tract's `run` does, without the classifier's per-node clearing of the
//! wide-vector state (engine "tract-plain-run"). `--backbone` names the
//! file in `MODEL_DIR` to time (default `backbone.onnx`, Lite0;
//! `backbone-lite2.onnx` is the classifier's other one).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use catdog::classifier::{
    BACKBONE_FILE, Classifier, ConvolutionKernels, ModelInput, OptimizedBackbone, run_plan,
};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimpleState, eval};

struct Options {
    runs: usize,
    warmup: usize,
    profile: bool,
    kernels: ConvolutionKernels,
    plain_run: bool,
    backbone: String,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        runs: 30,
        warmup: 3,
        profile: false,
        kernels: ConvolutionKernels::Ours,
        plain_run: false,
        backbone: BACKBONE_FILE.to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut count = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--runs" => options.runs = count("--runs")?.max(1),
            "--warmup" => options.warmup = count("--warmup")?,
            "--profile" => options.profile = true,
            "--tract-depthwise" => options.kernels = ConvolutionKernels::TractMixed,
            "--channels-first" => options.kernels = ConvolutionKernels::TractChannelsFirst,
            "--plain-run" => options.plain_run = true,
            "--backbone" => {
                options.backbone = args.next().ok_or("--backbone needs a file name")?;
            }
            // cargo bench passes --bench; criterion-style filters are ignored.
            _ => {}
        }
    }
    Ok(options)
}

fn model_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root.join(dir),
        None => root.join(".cache/model"),
    }
}

/// model/check_export.py's "ramp": ((c·side² + h·side + w) mod 255)/127.5 − 1.
fn ramp(side: u32) -> Vec<f32> {
    let side = side as usize;
    (0..3 * side * side)
        .map(|i| (i % 255) as f32 / 127.5 - 1.0)
        .collect()
}

/// CPU time of this thread so far (Linux), in nanoseconds. tract runs on the
/// calling thread, so this is its whole cost; on a shared, loaded machine it
/// is steadier than the wall clock, which also counts time spent waiting for
/// a core.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

fn main() -> anyhow::Result<()> {
    let options = parse_options().map_err(anyhow::Error::msg)?;
    let dir = model_dir();
    // What classify-image does at start: read, optimise and plan the model.
    let started = Instant::now();
    let classifier = Classifier::load(&dir)?;
    let load = started.elapsed();
    drop(classifier);

    let optimized = OptimizedBackbone::load_with(&dir.join(&options.backbone), options.kernels)?;
    let side = optimized.geometry.side;
    let input =
        ModelInput::from_chw(ramp(side), side).ok_or(anyhow::anyhow!("ramp has the wrong size"))?;
    let tensor = input.tensor().clone();
    let plan = optimized.model.into_runnable()?;
    let run = || {
        if options.plain_run {
            plan.run(tvec!(tensor.clone().into_tvalue()))
        } else {
            run_plan(&plan, tensor.clone().into_tvalue())
        }
    };
    for _ in 0..options.warmup {
        run()?;
    }
    let mut times = Vec::with_capacity(options.runs);
    let cpu_before = thread_cpu_ns();
    for _ in 0..options.runs {
        let started = Instant::now();
        std::hint::black_box(run()?);
        times.push(ms(started.elapsed()));
    }
    let cpu_ms = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before) as f64 / 1e6 / options.runs as f64);
    let engine = match (options.kernels, options.plain_run) {
        (ConvolutionKernels::Ours, false) => "tract",
        (ConvolutionKernels::Ours, true) => "tract-plain-run",
        (ConvolutionKernels::TractMixed, _) => "tract-depthwise",
        (ConvolutionKernels::TractChannelsFirst, _) => "tract-channels-first",
    };
    let summary = serde_json::json!({
        "engine": engine,
        "backbone": options.backbone,
        "load_ms": (ms(load) * 10.0).round() / 10.0,
        "median_ms": (median(&times) * 100.0).round() / 100.0,
        "cpu_ms": cpu_ms.map(|c| (c * 100.0).round() / 100.0),
        "times_ms": times.iter().map(|t| (t * 100.0).round() / 100.0).collect::<Vec<_>>(),
    });
    println!("{summary}");

    if options.profile {
        profile(&plan, &tensor, options.runs)?;
    }
    Ok(())
}

/// Times every node of the optimised plan over `runs` inferences, by the
/// wall clock (so on a loaded machine the shares are more telling than the
/// absolute figures).
fn profile(plan: &Arc<TypedRunnableModel>, tensor: &Tensor, runs: usize) -> anyhow::Result<()> {
    let mut state = SimpleState::new(plan)?;
    let mut per_node: BTreeMap<usize, Duration> = BTreeMap::new();
    for _ in 0..runs {
        state.run_plan_with_eval(
            tvec!(tensor.clone().into_tvalue()),
            |ctx, op_state, node, inputs| {
                let started = Instant::now();
                let outputs = eval(ctx, op_state, node, inputs);
                *per_node.entry(node.id).or_default() += started.elapsed();
                outputs
            },
        )?;
    }
    let model = plan.model();
    let total: Duration = per_node.values().sum();
    let mut per_kind: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
    for (&id, &time) in &per_node {
        let entry = per_kind
            .entry(model.node(id).op().name().to_string())
            .or_default();
        entry.0 += time;
        entry.1 += 1;
    }
    let share = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-12);
    let runs = runs as u32;
    eprintln!(
        "profile: {:.2} ms per inference in {} nodes",
        ms(total / runs),
        per_node.len()
    );
    let mut kinds: Vec<_> = per_kind.into_iter().collect();
    kinds.sort_by_key(|(_, (time, _))| Reverse(*time));
    for (kind, (time, count)) in kinds {
        eprintln!(
            "  {kind:<28} {:>3} nodes {:>8.3} ms {:>5.1}%",
            count,
            ms(time / runs),
            share(time)
        );
    }
    let mut nodes: Vec<_> = per_node.into_iter().collect();
    nodes.sort_by_key(|(_, time)| Reverse(*time));
    eprintln!("slowest nodes:");
    for (id, time) in nodes.into_iter().take(25) {
        let node = model.node(id);
        let shape = node
            .outputs
            .first()
            .map(|o| format!("{:?}", o.fact.shape))
            .unwrap_or_default();
        let info = node.op().info().unwrap_or_default().join("; ");
        eprintln!(
            "  {:>7.3} ms {:>5.1}%  {} {} -> {shape}  {}",
            ms(time / runs),
            share(time),
            node.op().name(),
            node.name,
            info.chars().take(160).collect::<String>()
        );
    }
    Ok(())
}
