"""OpenVINO variants: the generator rebuilt with OpenVINO's opset API (:mod:`quant.openvino_graph`), run FP32,
NNCF post-training INT8 or per-layer mixed int8 / bf16 / fp32 on the CPU plugin.

``openvino-fp32`` is the OpenVINO baseline. ``openvino-int8`` is ``nncf.quantize`` with the ``PERFORMANCE``
preset (symmetric INT8 weights and activations: signed i8 everywhere, no zero points, NNCF's default for
OpenVINO) and the default ``model_type`` (``TRANSFORMER`` is for attention models), calibrated one sample per
item in the Calibration's order (NNCF's per-sample min/max averaging; deterministic). Both compile with the
inference precision hint f32: on AMX CPUs OpenVINO otherwise runs non-quantized ops in bf16, and oneDNN's
AMX-bf16 kernel for the padded conv3d_1 gives wrong showers (-24% energy). The op report reads the executed
precisions from the compiled model's runtime model.

:func:`build_mixed` assigns a precision per Keras layer: INT8 through NNCF (an ignored scope for the others), bf16
through the inference precision hint bf16 with every fp32 layer's ops marked to keep f32
(:func:`quant.openvino_graph.keep_original_precision`); the marks and the hint are saved with the variant.
A layer's ops run, and its output is stored, in its precision, so an fp32 layer after a bf16 one sees
bf16-rounded inputs; what the runtime fused or folded shows in the op report. ``int8+bf16`` is the hand-made mix
from the legacy stack: dense_1, conv3d_1 and conv3d_2 INT8 (so conv3d_1 never runs AMX-bf16), the rest bf16. On
OpenVINO its INT8 part fails the paired validation on both models (known_failures.toml); the bf16 part is harmless.
"""

from __future__ import annotations

import functools
import importlib.util
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan.model import SHOWER_SHAPE, latent_input
from quant.base import OpPrecision, OpReport, VariantError, VariantUnavailable, read_variant_file, write_variant_file
from quant.calibration import Calibration
from quant.cpu import BF16_FLAGS, require_any
from quant.registry import Family, VariantSpec, register, register_family

if TYPE_CHECKING:
    from collections.abc import Mapping

FP32, INT8, MIXED, INT8_BF16 = "openvino-fp32", "openvino-int8", "openvino-mixed", "int8+bf16"
DEVICE = "CPU"
INFERENCE_PRECISION = "f32"  # never the AMX default bf16 (see module docstring)
COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION}
NNCF_PRESET = "PERFORMANCE"
MODEL_XML = "generator.xml"
BATCH_SIZE = 128  # the model has a dynamic batch; generate() feeds it chunks of this size
COMPUTE_OPS = ("Convolution", "FullyConnected", "MatMul")  # runtime layer types reported row by row
QUIET_OPS = ("Const", "Input", "Output")
PRECISIONS = {"i8": "int8", "u8": "int8", "bf16": "bf16", "f16": "fp16", "f32": "fp32"}
REPORT_SOURCE = "OpenVINO runtime model (executed precisions)"
FOLDED = "none"  # op-report precision of a layer the runtime folded away
# Kept f32 by build_int8(..., fp32_layers=FP32_HEAD): with CERN's weights, 8-bit activations into conv3d_3 (via
# the second upsampling) and conv3d_4 add ~+500% shower energy; dense_1, conv3d_1 and conv3d_2 INT8 cost ~3%.
FP32_HEAD = ("up_sampling3d_2", "conv3d_3", "conv3d_4")
LAYER_PRECISIONS = ("int8", "bf16", "fp32")  # what build_mixed accepts per Keras layer
HINTS = {"bf16": "bf16", "fp32": "f32"}  # float precision -> INFERENCE_PRECISION_HINT
INT8_LAYERS = ("Dense", "Conv3D", "UpSampling3D")  # the Keras layers NNCF quantizes (an upsampling: its input)
OPLESS_LAYERS = ("InputLayer", "ZeroPadding3D")  # no op of their own (the padding is the next Conv3D's)
# int8+bf16's hand-made "safe" mix: safe on the legacy TF 2.15 + ITEX stack with CERN's weights, not on OpenVINO
SAFE_MIX = {"dense_1": "int8", "conv3d_1": "int8", "conv3d_2": "int8"}
BF16_NEEDS = "AMX-BF16 or AVX512-BF16"


@functools.cache
def _core():
    import openvino as ov

    return ov.Core()


def set_threads(threads: int) -> str:
    """``INFERENCE_NUM_THREADS`` of the Core every OpenVINO variant compiles with (models compiled from now on)."""
    try:
        core = _core()  # the Core every OpenVINO variant compiles with
        core.set_property(DEVICE, {"INFERENCE_NUM_THREADS": threads})
        return f"INFERENCE_NUM_THREADS {core.get_property(DEVICE, 'INFERENCE_NUM_THREADS')}"
    except ImportError:
        return "not installed"
    except Exception as exc:  # noqa: BLE001 - an OpenVINO without this property: say so, do not fail the run
        return f"not set ({type(exc).__name__}: {exc})"


# the OpenVINO per-layer builder, named in the sensitivity cache key (change it when the build changes)
PER_LAYER_BUILDER = "quant.openvino.build_mixed, glue follows (1)"


def build_per_layer(generator, calibration, assignment: Mapping[str, str]):
    """:func:`build_mixed` of ``assignment`` (the rest follows :func:`quant.sensitivity.full_assignment`): the
    sensitivity sweep's OpenVINO runtime."""
    import logging

    import nncf

    from quant.sensitivity import MIXED_NAME, full_assignment

    nncf.set_log_level(logging.WARNING)
    return build_mixed(generator, calibration, full_assignment(generator, assignment), name=MIXED_NAME)


def per_layer_runtime():
    """Per-layer int8 (NNCF ignored scope) and bf16 (where the CPU has it) on OpenVINO."""
    from quant.cpu import has_any
    from quant.sensitivity import Runtime, require_modules

    require_modules("openvino", "openvino", "nncf")
    if has_any(BF16_FLAGS):
        return Runtime("openvino", ("int8", "bf16"), build_per_layer, builder=PER_LAYER_BUILDER)
    return Runtime("openvino", ("int8",), build_per_layer, builder=PER_LAYER_BUILDER,
                   note="no bf16: the CPU has neither AMX-BF16 nor AVX512-BF16")


OPENVINO = register_family(Family("openvino", ("openvino", "nncf"), set_threads, per_layer_runtime))


class OpenVINOGenerator:
    """An OpenVINO generator model, compiled on first use for the CPU with f32 inference precision."""

    def __init__(self, name: str, model, info: dict):
        self.name, self.model, self.info = name, model, dict(info)
        self._compiled = self._size = None

    @property
    def inference_precision(self) -> str:
        return self.info.get("inference_precision", INFERENCE_PRECISION)

    def compiled(self):
        if self._compiled is None:
            config = {**COMPILE_CONFIG, "INFERENCE_PRECISION_HINT": self.inference_precision}
            self._compiled = _core().compile_model(self.model, DEVICE, config)
        return self._compiled

    def generate(self, z: np.ndarray, energy_gev: np.ndarray) -> np.ndarray:
        """Showers (N, 25, 25, 25) float32 in GeV."""
        x, compiled = latent_input(z, energy_gev), self.compiled()
        out = [np.asarray(compiled(x[i:i + BATCH_SIZE])[0], np.float32) for i in range(0, len(x), BATCH_SIZE)]
        return np.concatenate(out) if out else np.zeros((0,) + SHOWER_SHAPE, np.float32)

    def save(self, directory) -> Path:
        """The IR (xml + bin, weights as built: no fp16 compression) and variant.json."""
        import openvino as ov

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ov.save_model(self.model, str(directory / MODEL_XML), compress_to_fp16=False)
        write_variant_file(directory, self.name, **self.info)
        return directory

    def size_bytes(self) -> int:
        """Bytes of the saved IR (xml + bin)."""
        if self._size is None:
            with tempfile.TemporaryDirectory() as tmp:
                self.save(tmp)
                self._size = sum(p.stat().st_size for p in Path(tmp).glob(f"{Path(MODEL_XML).stem}.*"))
        return self._size

    def op_report(self) -> OpReport:
        """One row per Dense/Conv3D layer with the precision its fused runtime node executes in; a mixed variant
        adds a row per other layer it assigned and notes where the executed precision differs from its request."""
        layers = {op.get_friendly_name() for op in self.model.get_ordered_ops()
                  if op.get_type_name() in ("MatMul", "Convolution")}
        runtime = [_runtime_info(op) for op in self.compiled().get_runtime_model().get_ordered_ops()]
        rows, others = [], Counter()
        for kind, precision, fused in runtime:
            if kind in COMPUTE_OPS:
                layer = next((n.split("/")[0] for n in fused if n.split("/")[0] in layers), fused[0])
                rows.append(OpPrecision(layer, PRECISIONS.get(precision, precision), f"{kind} ({precision})"))
            elif kind not in QUIET_OPS:
                others[f"{kind} {precision}"] += 1
        rows += [_fused_row(layer, runtime) for layer in sorted(self.info.get("precisions", {}))  # sorted: as saved
                 if layer not in {row.op for row in rows}]
        notes = [f"inference precision hint {self.inference_precision}"] + _request_notes(self.info, rows)
        notes.append("other runtime ops: " + ", ".join(f"{k} x{n}" for k, n in sorted(others.items())))
        return OpReport(self.name, rows, REPORT_SOURCE, notes + list(self.info.get("report_notes", [])))


def _fused_row(layer: str, runtime) -> OpPrecision:
    """The row of a non-compute layer: the runtime node its ops were fused into (first match)."""
    for kind, precision, fused in runtime:
        if kind not in QUIET_OPS and any(n.split("/")[0] == layer for n in fused):
            return OpPrecision(layer, PRECISIONS.get(precision, precision), f"in {fused[0]} {kind} ({precision})")
    return OpPrecision(layer, FOLDED, "no runtime node holds it (folded into constants or a quantizer)")


def _request_notes(info: dict, rows) -> list[str]:
    requested = info.get("layer_precisions")
    if not requested:
        return []
    assigned = ", ".join(f"{layer} {p}" for layer, p in sorted(info.get("precisions", {}).items()))
    notes = [f"requested: {assigned or 'nothing'}; other layers {info.get('default_precision')}"]
    differ = [f"{row.op} {requested[row.op]} -> {row.precision}" for row in rows
              if row.op in requested and row.precision not in (requested[row.op], FOLDED)]
    folded = [row.op for row in rows if row.precision == FOLDED]
    return (notes + ([f"executed precision differs from the request: {', '.join(differ)}"] if differ else [])
            + ([f"folded away by the runtime (no node of its own): {', '.join(folded)}"] if folded else []))


def executed_precisions(variant: OpenVINOGenerator, layers) -> dict[str, str]:
    """Keras layer -> the precision of the runtime node that holds it (Dense/Conv3D: its own node)."""
    runtime = [_runtime_info(op) for op in variant.compiled().get_runtime_model().get_ordered_ops()]
    rows = {row.op: row.precision for row in variant.op_report().rows}
    return {layer: rows[layer] if layer in rows else _fused_row(layer, runtime).precision for layer in layers}


def _runtime_info(op) -> tuple[str, str, list[str]]:
    """(layerType, runtimePrecision, original op names fused into it) of a runtime-model node."""
    rt = op.get_rt_info()
    kind, precision, fused = (rt[k].astype(str) if k in rt else "" for k in
                              ("layerType", "runtimePrecision", "originalLayersNames"))
    return kind, precision, fused.split(",")


def requires(variant: str, *modules: str, bf16: bool = False):
    def check() -> None:
        for module in modules:
            if importlib.util.find_spec(module) is None:
                raise VariantUnavailable(variant, f"{module} not installed")
        if bf16:
            require_any(variant, BF16_FLAGS, BF16_NEEDS)
    return check


def check_calibration(calibration) -> Calibration:
    if not isinstance(calibration, Calibration):
        raise VariantError(f"calibration must be a quant.calibration.Calibration, got {type(calibration).__name__}")
    return calibration


def quantize(model, calibration: Calibration, fp32_layers=()):
    """NNCF post-training INT8 of an OpenVINO generator model; ``fp32_layers`` (Keras names) stay unquantized.

    An UpSampling3D has its own input quantizer, so keeping a convolution's input f32 means listing the
    upsampling before it too (see ``FP32_HEAD``).
    """
    import nncf

    calibration = check_calibration(calibration)
    dataset = nncf.Dataset(list(calibration.batches(batch_size=1)))
    ignored = nncf.IgnoredScope(names=list(fp32_layers)) if fp32_layers else None
    return nncf.quantize(model, dataset, preset=getattr(nncf.QuantizationPreset, NNCF_PRESET),
                         subset_size=len(calibration), ignored_scope=ignored)


def build_fp32(generator, calibration=None, context=None) -> OpenVINOGenerator:
    """The Keras generator as an OpenVINO FP32 model (calibration unused)."""
    from quant.openvino_graph import build_model

    return OpenVINOGenerator(FP32, build_model(generator), {"inference_precision": INFERENCE_PRECISION})


def build_int8(generator, calibration: Calibration, context=None, fp32_layers=()) -> OpenVINOGenerator:
    """NNCF INT8 of the OpenVINO generator, calibrated on ``calibration``."""
    from quant.openvino_graph import build_model

    model = quantize(build_model(generator), check_calibration(calibration), fp32_layers)
    info = {"inference_precision": INFERENCE_PRECISION, "nncf_preset": NNCF_PRESET.lower(),
            "calibration_samples": len(calibration), "fp32_layers": list(fp32_layers)}
    return OpenVINOGenerator(INT8, model, info)


def _layer_kinds(generator) -> dict[str, str]:
    """Keras layer name -> class name, for the layers that become OpenVINO ops, in model order."""
    kinds = {layer.name: type(layer).__name__ for layer in generator.layers}
    return {name: kind for name, kind in kinds.items() if kind not in OPLESS_LAYERS}


def resolve_precisions(generator, precisions: Mapping[str, str], default: str = "fp32") -> dict[str, str]:
    """Every Keras layer with ops -> "int8" | "bf16" | "fp32": ``precisions``, else ``default``; an
    UpSampling3D not listed is int8 exactly when the Conv3D after it is (NNCF quantizes the upsampling's input
    then), so callers think in compute layers. Bad names or precisions -> :class:`VariantError` naming them."""
    kinds = _layer_kinds(generator)
    if default not in HINTS:
        raise VariantError(f"default precision must be one of {', '.join(HINTS)}, got '{default}'")
    unknown = sorted(set(precisions) - set(kinds))
    if unknown:
        raise VariantError(f"unknown layer(s) {', '.join(map(str, unknown))}; layers with ops: {', '.join(kinds)}")
    bad = [f"{layer}: '{p}'" for layer, p in precisions.items() if p not in LAYER_PRECISIONS]
    if bad:
        raise VariantError(f"unknown precision(s) {'; '.join(bad)} (use {', '.join(LAYER_PRECISIONS)})")
    not_int8 = [f"{layer} ({kinds[layer]})" for layer, p in precisions.items()
                if p == "int8" and kinds[layer] not in INT8_LAYERS]
    if not_int8:
        raise VariantError(f"int8 applies to {', '.join(INT8_LAYERS)} layers only, not {', '.join(not_int8)}")
    resolved, names = {}, list(kinds)
    for i, name in enumerate(names):
        resolved[name] = precisions.get(name, default)
        if kinds[name] == "UpSampling3D" and name not in precisions:
            conv = next((n for n in names[i + 1:] if kinds[n] == "Conv3D"), None)
            resolved[name] = "int8" if conv and precisions.get(conv) == "int8" else default
    return resolved


def build_mixed(generator, calibration: Calibration | None, precisions: Mapping[str, str], name: str = MIXED,
                default: str = "fp32") -> OpenVINOGenerator:
    """The generator with a precision per Keras layer (see :func:`resolve_precisions`): layers not listed run
    ``default``. INT8 layers are NNCF-quantized on ``calibration`` (needed only when some layer is int8); with any
    bf16 layer the model compiles with the bf16 hint and the ops of fp32 layers are marked to keep f32 (an fp32
    Dense is then built as a 1x1x1 Convolution, see :func:`quant.openvino_graph.build_model`). bf16 needs a CPU
    with AMX-BF16 or AVX512-BF16 (else :class:`VariantUnavailable`). ``name`` is the variant's name; a saved
    variant of any name loads with :func:`load` (through the registry only under a registered name).
    """
    from quant.openvino_graph import build_model, keep_original_precision, layer_ops

    resolved = resolve_precisions(generator, precisions, default)
    hint = HINTS["bf16"] if "bf16" in resolved.values() else HINTS["fp32"]
    if hint == "bf16":
        require_any(name, BF16_FLAGS, BF16_NEEDS)
    kinds = _layer_kinds(generator)
    f32_dense = [layer for layer, p in resolved.items() if kinds[layer] == "Dense" and p == "fp32" and hint == "bf16"]
    model = build_model(generator, dense_as_conv=f32_dense)
    info = {"inference_precision": hint, "precisions": dict(precisions), "default_precision": default,
            "layer_precisions": resolved}
    if "int8" in resolved.values():
        # every op of a float Dense/Conv3D/UpSampling3D, not only its main op: NNCF quantizes a bias Add it cannot
        # fuse (the Dense built as a Convolution); the other layers' ops stay free for NNCF to place quantizers
        float_layers = [layer for layer, p in resolved.items() if p != "int8" and kinds[layer] in INT8_LAYERS]
        ignored = [op for layer in float_layers for op in layer_ops(model, layer)]
        model = quantize(model, check_calibration(calibration), ignored)
        info.update(nncf_preset=NNCF_PRESET.lower(), calibration_samples=len(calibration),
                    int8_ignored_layers=float_layers)
    if hint == "bf16":
        keep = [op for layer, p in resolved.items() if p == "fp32" for op in layer_ops(model, layer)]
        model = keep_original_precision(model, keep) if keep else model
        info["kept_f32_ops"] = keep
    return OpenVINOGenerator(name, model, info)


def build_int8_bf16(generator, calibration: Calibration, context=None) -> OpenVINOGenerator:
    """``int8+bf16``: :data:`SAFE_MIX` INT8, every other layer bf16."""
    return build_mixed(generator, calibration, SAFE_MIX, INT8_BF16, default="bf16")


def load(directory, name: str | None = None) -> OpenVINOGenerator:
    """A variant saved by :meth:`OpenVINOGenerator.save`."""
    info = read_variant_file(directory)
    xml = Path(directory) / MODEL_XML
    if name is not None and info.get("variant") != name:
        raise VariantError(f"{directory}: holds variant '{info.get('variant')}', not '{name}'")
    if not xml.is_file():
        raise VariantError(f"{directory}: saved OpenVINO variant lacks {MODEL_XML}")
    variant = info.pop("variant")
    if info.get("inference_precision") == HINTS["bf16"]:
        require_any(variant, BF16_FLAGS, BF16_NEEDS)
    return OpenVINOGenerator(variant, _core().read_model(str(xml)), info)


register(VariantSpec(FP32, "OpenVINO FP32 (opset-built graph, inference precision f32)", OPENVINO, build_fp32,
                     functools.partial(load, name=FP32), requires(FP32, "openvino")))
register(VariantSpec(INT8, "OpenVINO + NNCF post-training INT8 (all Dense/Conv3D int8, rest f32)", OPENVINO,
                     build_int8,
                     functools.partial(load, name=INT8), requires(INT8, "openvino", "nncf")))
register(VariantSpec(INT8_BF16, "OpenVINO mixed: dense_1, conv3d_1, conv3d_2 INT8 (NNCF), every other layer bf16",
                     OPENVINO, build_int8_bf16, functools.partial(load, name=INT8_BF16),
                     requires(INT8_BF16, "openvino", "nncf", bf16=True)))
