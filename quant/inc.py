"""``inc-int8``: Intel Neural Compressor 3.x static post-training INT8 of the frozen generator graph.

The FP32 Keras generator is frozen to a GraphDef (:func:`quant.inc_graph.freeze`, which also sidesteps a wrong
oneDNN fusion of Pad -> Conv3D on TF 2.21) and quantized by ``neural_compressor.tensorflow.quantize_model`` with
a :class:`StaticQuantConfig`: symmetric int8 weights (per tensor, or per output channel) and activations, minmax
ranges over all of the Calibration's generator inputs (min of the batch minima, max of the maxima: deterministic).

On stock TensorFlow, INC rewrites only ``dense_1`` (``QuantizedMatMulWithBiasAndDequantize``): TF has no quantized
Conv3D kernel, so the four convolutions stay fp32 and the speed-up is ~1.0x. Only with
intel-extension-for-tensorflow (the legacy ``itex`` stack) does INC wrap Conv3D in QuantizeV2/Dequantize pairs that
ITEX fuses into int8 convolutions. :meth:`IncVariant.op_report` reads this from the quantized graph's nodes, not
from INC's printed statistics table (which reports "Conv3D INT8 0" even where ITEX runs them in int8).
Saved as the quantized GraphDef (:data:`GRAPH_FILE`) plus ``variant.json``. ``inc-int8-tuned``
(:mod:`quant.inc_tuned`) lets INC's accuracy-driven tuning choose the int8 layers.

``inc-int8-bf16`` (ITEX only): the same INT8 with the layers unsafe in int8 (:data:`FP32_HEAD`) in bfloat16 instead
of fp32. INC 3.0.2 skips its own bf16 pass under the ITEX backend (``use_bf16`` has no effect there), so its
``BF16Convert`` graph rewriter is applied to those Conv3D nodes after quantization; ITEX runs them on AMX-BF16.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from gan.model import SHOWER_SHAPE, latent_input
from quant.base import OpPrecision, OpReport, VariantError, VariantUnavailable, read_variant_file, write_variant_file
from quant.calibration import Calibration
from quant.registry import Family, VariantSpec, register, register_family

NAME = "inc-int8"
MIXED_NAME = "inc-int8-bf16"
REQUIRED = {  # module -> (package, how to install it); neural-compressor's "tf" extra would pull the full tensorflow
    "tensorflow": ("tensorflow-cpu", "pip install 'tensorflow-cpu==2.21.*'"),
    "neural_compressor": ("neural-compressor", "pip install neural-compressor==3.10 prettytable pydantic pyyaml"),
}
GRAPH_FILE = "generator.pb"
BATCH_SIZE = 128  # showers per call of the graph
CALIBRATION_BATCH = 32  # samples per calibration step (ranges do not depend on it)
QUANT_CONFIG = {"weight_dtype": "int8", "weight_sym": True, "weight_algorithm": "minmax",
                "act_dtype": "int8", "act_sym": True, "act_granularity": "per_tensor", "act_algorithm": "minmax"}
GRANULARITY = {False: "per_tensor", True: "per_channel"}
FP32_CONFIG = {"weight_dtype": "fp32", "act_dtype": "fp32"}
SOURCE = "quantized GraphDef (node types per layer), not INC's statistics table"
NO_INT8_CONV3D = "stock TensorFlow has no quantized Conv3D kernel, INC leaves it fp32"
# Kept out of int8 by build(..., fp32_layers=FP32_HEAD) where INC does reach Conv3D (ITEX): with CERN's weights
# int8 in conv3d_3 / conv3d_4 inflates the shower energy 2.5-20x; with conv3d_1 + conv3d_2 int8 the energy stays
# within a few %, though the transverse width is off (inc-int8-tuned's physics objective then rejects conv3d_2).
FP32_HEAD = ("conv3d_3", "conv3d_4")
NEEDS_ITEX = "needs the itex environment: tox -e itex (intel-extension-for-tensorflow runs INC's int8 Conv3D)"
QUIET_LOGGERS = ("neural_compressor", "tensorflow")


def _set_threads(threads: int) -> str:
    from quant.fp32 import set_tensorflow_threads

    return "TensorFlow graph: " + set_tensorflow_threads(threads)


INC = register_family(Family(
    "inc", ("tensorflow", "neural_compressor", "intel_extension_for_tensorflow"), _set_threads,
    no_per_layer="INC on stock TensorFlow quantizes only the Dense layer (no per-layer Conv3D control)"))


def check(name: str = NAME) -> None:
    """VariantUnavailable unless neural-compressor and TensorFlow can be imported."""
    for module, (package, install) in REQUIRED.items():
        if importlib.util.find_spec(module) is None:
            raise VariantUnavailable(name, f"{package} not installed: {install}")


def check_mixed() -> None:
    """``inc-int8-bf16`` needs INC, ITEX (else no Conv3D is int8 and the mix is moot) and bf16 instructions."""
    from quant.cpu import BF16_FLAGS, require_any

    check(MIXED_NAME)
    if not itex_installed():
        raise VariantUnavailable(MIXED_NAME, NEEDS_ITEX)
    require_any(MIXED_NAME, BF16_FLAGS, "bf16 instructions")


def itex_installed() -> bool:
    return importlib.util.find_spec("intel_extension_for_tensorflow") is not None


def _inc():
    """``neural_compressor.tensorflow``, first imported in a scratch directory (3.0.2 makes ./nc_workspace/ then)."""
    with tempfile.TemporaryDirectory(prefix="inc-") as scratch, contextlib.chdir(scratch):
        import neural_compressor.tensorflow as inc
    return inc


class _Batches:
    """The calibration loader INC expects: ``batch_size`` and (inputs, labels) batches."""

    def __init__(self, inputs: np.ndarray, batch_size: int):
        self.inputs, self.batch_size = inputs, batch_size

    def __iter__(self):
        for i in range(0, len(self.inputs), self.batch_size):
            batch = self.inputs[i:i + self.batch_size]
            yield batch, np.zeros(len(batch), np.float32)

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)


def _calibration_inputs(calibration) -> np.ndarray:
    if not isinstance(calibration, Calibration):
        raise VariantError(f"{NAME} needs calibration data as a quant.calibration.Calibration, "
                           f"got {type(calibration).__name__}")
    return calibration.generator_inputs()


@contextlib.contextmanager
def _quiet():
    """INC's INFO chatter and TF's deprecation log lines off while quantizing."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _calibration_capture(workspace: str):
    """INC's calibration reads the min/max that TF Print ops write to file descriptor 2.

    INC captures ``sys.stderr`` as it was when INC was imported, which under pytest (or any stream redirection)
    is not descriptor 2: the ranges are lost and INC fails. Point its capture at descriptor 2 for the call, and
    put the log files INC leaves behind (``tempfile.mkstemp``) into ``workspace``.
    """
    from neural_compressor.tensorflow.utils.utility import CaptureOutputToFile

    init, tempdir = CaptureOutputToFile.__init__, tempfile.tempdir
    defaults = init.__defaults__
    init.__defaults__, tempfile.tempdir = (sys.__stderr__,), workspace
    try:
        yield
    finally:
        init.__defaults__, tempfile.tempdir = defaults, tempdir


def quant_config(per_channel: bool = False, fp32_nodes=()):
    """INC's StaticQuantConfig for this variant; ``fp32_nodes`` (graph node names) are left unquantized."""
    inc = _inc()
    config = inc.StaticQuantConfig(**QUANT_CONFIG, weight_granularity=GRANULARITY[per_channel])
    for node in fp32_nodes:
        config.set_local(re.escape(node) + "$", inc.StaticQuantConfig(**FP32_CONFIG))
    return config


def calibration_loader(inputs: np.ndarray) -> _Batches:
    return _Batches(inputs, min(CALIBRATION_BATCH, len(inputs)))


@contextlib.contextmanager
def _keep_global_config(tf_config):
    """INC resets its global config after every quantization (backend 'itex' -> 'default', ``use_bf16`` -> True),
    so the second trial of an ``autotune`` would quantize for another backend: keep the current one instead."""
    kept = copy.deepcopy(tf_config.global_config)
    tf_config.reset_global_config = lambda: setattr(tf_config, "global_config", copy.deepcopy(kept))
    try:
        yield
    finally:
        del tf_config.reset_global_config
        tf_config.reset_global_config()


@contextlib.contextmanager
def inc_session(graph_def):
    """INC's model of ``graph_def``, for ``quantize_model`` / ``autotune`` calls inside the ``with`` block.

    INC runs in a temporary working directory (it writes scratch files relative to it; 3.0.2 even creates
    ./nc_workspace/<time>/ on import); its bf16 fallback for excluded ops is switched off (on stock TF with a bf16
    CPU it would otherwise run the layers kept fp32 in bfloat16; under ITEX 3.0.2 ignores it anyway).
    """
    inc = _inc()
    tf_config = inc.utils.model.TFConfig
    with (tempfile.TemporaryDirectory(prefix="inc-") as workspace, contextlib.chdir(workspace), _quiet(),
          _calibration_capture(workspace)):
        model = inc.Model(graph_def, conf={"workspace_path": workspace + "/", "performance_only": False})
        tf_config.global_config["use_bf16"] = False
        with _keep_global_config(tf_config):
            yield model


def quantize(graph_def, inputs: np.ndarray, per_channel: bool = False, fp32_nodes=(), bf16_nodes=()):
    """INC static INT8 of a frozen GraphDef, calibrated on ``inputs`` (N, 200); returns the quantized GraphDef.

    ``fp32_nodes`` and ``bf16_nodes`` stay out of int8; ``bf16_nodes`` are then converted to bfloat16
    (:func:`to_bf16`).
    """
    inc, loader = _inc(), calibration_loader(inputs)
    config = quant_config(per_channel, sorted(set(fp32_nodes) | set(bf16_nodes)))  # INC sets its log level here
    with inc_session(graph_def) as model:
        quantized = inc.quantize_model(model, config, loader, calib_iteration=len(loader))
    if quantized is None:
        raise VariantError(f"{NAME}: neural-compressor returned no quantized model")
    return to_bf16(quantized.graph_def, bf16_nodes) if bf16_nodes else quantized.graph_def


def to_bf16(graph_def, nodes):
    """``graph_def`` with ``nodes`` (fp32 compute nodes) in bfloat16, by INC's own ``BF16Convert`` rewriter.

    INC applies it itself only without ITEX (and only with ``use_bf16``); its ITEX path returns before it. Inputs
    are cast to bf16 and outputs back to fp32; weights become bf16 constants.
    """
    from neural_compressor.tensorflow.quantization.utils.graph_rewriter.bf16.bf16_convert import BF16Convert

    missing = set(nodes) - {node.name for node in graph_def.node}
    if missing:
        raise VariantError(f"{MIXED_NAME}: nodes {sorted(missing)} are not in the quantized graph")
    with _quiet():
        return BF16Convert(graph_def, [], list(nodes)).do_transformation()


class IncVariant:
    """A quantized GraphDef run as one pruned TF function."""

    def __init__(self, graph_def, info: dict, name: str = NAME):
        from quant.inc_graph import graph_function

        self.graph_def, self.info, self.name = graph_def, dict(info), name
        self._run = graph_function(graph_def, info["input"], info["output"])

    def generate(self, z: np.ndarray, energy_gev: np.ndarray) -> np.ndarray:
        """Showers (N, 25, 25, 25) float32 in GeV, computed in batches of :data:`BATCH_SIZE`."""
        import tensorflow as tf

        x = latent_input(z, energy_gev)
        out = [self._run(tf.constant(x[i:i + BATCH_SIZE])).numpy()[..., 0] for i in range(0, len(x), BATCH_SIZE)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0,) + SHOWER_SHAPE, np.float32)

    def save(self, directory) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / GRAPH_FILE).write_bytes(self.graph_def.SerializeToString())
        write_variant_file(directory, self.name, graph=GRAPH_FILE, **self.info)
        return directory

    def size_bytes(self) -> int:
        """Bytes of the serialized quantized GraphDef, as saved (with ITEX, INC keeps the weights fp32 in it)."""
        return self.graph_def.ByteSize()

    def _fp32_reason(self, layer: str) -> str:
        if layer in self.info.get("fp32_layers", ()):
            return "kept fp32 on request"
        return "INC left it fp32" if itex_installed() else NO_INT8_CONV3D

    def _notes(self) -> list[str]:
        """Extra op-report notes (subclasses add theirs)."""
        if self.info.get("bf16_layers"):
            return [f"{', '.join(self.info['bf16_layers'])} kept out of int8 and converted to bfloat16 by INC's "
                    "BF16Convert (INC 3.0.2 skips its bf16 pass under ITEX); ONEDNN_VERBOSE=1 shows AMX bf16 convs"]
        return []

    def op_report(self) -> OpReport:
        """Each Dense/Conv3D layer with the precision its node(s) in the quantized graph compute in."""
        from quant.inc_graph import has_bfloat16, node_counts, op_precisions

        rows = [row if row.precision != "fp32" else OpPrecision(row.op, "fp32", f"{row.note}: "
                                                                  f"{self._fp32_reason(row.op)}")
                for row in op_precisions(self.graph_def, self.info["layers"])]
        counts = node_counts(self.graph_def)
        notes = ["graph nodes: " + (", ".join(f"{op} x{n}" for op, n in sorted(counts.items())) or "none quantized")]
        if itex_installed():
            notes.append("ITEX installed: INC writes QuantizeV2/Dequantize around each op, which ITEX's oneDNN "
                         "graph fuses into int8 kernels; ONEDNN_VERBOSE=1 shows the executed ones")
        elif any(NO_INT8_CONV3D in row.note for row in rows):
            notes.append("Conv3D int8 needs intel-extension-for-tensorflow, so on stock TensorFlow only the dense "
                         "layer is int8: ~1.0x speed-up")
        if has_bfloat16(self.graph_def) and not any(row.precision == "bf16" for row in rows):
            notes.append("the graph also has bfloat16 nodes")
        return OpReport(self.name, rows, SOURCE, notes + self._notes())


def frozen_layers(generator, *layer_sets):
    """(GraphDef, input, output, layers, layer -> compute node names) of the frozen ``generator``; every name in
    ``layer_sets`` must be one of its Dense/Conv3D layers."""
    from quant.inc_graph import compute_nodes, freeze, weighted_layers

    layers = weighted_layers(generator)
    unknown = set().union(*layer_sets) - set(layers)
    if unknown:
        raise VariantError(f"fp32_layers {sorted(unknown)} are not Dense/Conv3D layers of the generator ({layers})")
    graph_def, input_name, output_name = freeze(generator)
    return graph_def, input_name, output_name, layers, compute_nodes(graph_def, layers)


def build(generator, calibration: Calibration, context=None, per_channel: bool = False, fp32_layers=(), bf16_layers=(),
          name: str = NAME) -> IncVariant:
    """INC static INT8 of the frozen ``generator``; ``fp32_layers`` (Keras layer names) stay unquantized,
    ``bf16_layers`` too and run in bfloat16 instead.

    ``per_channel`` asks for per-output-channel weight ranges. INC grants it only where its capability table for
    the TF build allows: on stock TensorFlow MatMul is per-tensor only, so ``dense_1`` stays per-tensor there (the
    op report shows what the graph holds).
    """
    inputs = _calibration_inputs(calibration)
    graph_def, input_name, output_name, layers, nodes = frozen_layers(generator, fp32_layers, bf16_layers)
    fp32_nodes = [node for layer in fp32_layers for node in nodes.get(layer, [])]
    bf16_nodes = [node for layer in bf16_layers for node in nodes.get(layer, [])]
    quantized = quantize(graph_def, inputs, per_channel, fp32_nodes, bf16_nodes)
    info = {"input": input_name, "output": output_name, "layers": layers, "calibration_samples": len(inputs),
            "weight_granularity": GRANULARITY[per_channel], "fp32_layers": list(fp32_layers)}
    if bf16_layers:
        info["bf16_layers"] = list(bf16_layers)
    return IncVariant(quantized, info, name)


def build_mixed(generator, calibration: Calibration, context=None) -> IncVariant:
    """``inc-int8-bf16``: INT8 with :data:`FP32_HEAD` in bfloat16 (ITEX only, see :func:`check_mixed`)."""
    return build(generator, calibration, bf16_layers=FP32_HEAD, name=MIXED_NAME)


def load(directory, name: str = NAME, variant_class=IncVariant) -> IncVariant:
    """A variant saved by :meth:`IncVariant.save`."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    info = read_variant_file(directory)
    if info.get("variant") != name:
        raise VariantError(f"{directory}: holds variant '{info.get('variant')}', not '{name}'")
    path = Path(directory) / info.pop("graph", GRAPH_FILE)
    if not path.is_file():
        raise VariantError(f"{directory}: saved {name} variant lacks {path.name}")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except DecodeError as exc:
        raise VariantError(f"{path}: not a readable GraphDef ({exc})") from None
    info.pop("variant")
    return variant_class(graph_def, info, name)


def load_mixed(directory) -> IncVariant:
    return load(directory, MIXED_NAME)


register(VariantSpec(NAME, "Intel Neural Compressor static INT8 (stock TF: dense_1 int8, Conv3D fp32)", INC,
                     build, load, check))
register(VariantSpec(MIXED_NAME, f"INC INT8 with {' and '.join(FP32_HEAD)} in bf16 (legacy ITEX stack only)",
                     INC, build_mixed, load_mixed, check_mixed))
