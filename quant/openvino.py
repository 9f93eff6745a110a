"""OpenVINO variants: the generator rebuilt with OpenVINO's opset API (:mod:`quant.openvino_graph`), run FP32 or
NNCF post-training INT8 on the CPU plugin.

``openvino-fp32`` is the OpenVINO baseline. ``openvino-int8`` is ``nncf.quantize`` with the ``PERFORMANCE``
preset (symmetric INT8 weights and activations: signed i8 everywhere, no zero points, NNCF's default for
OpenVINO) and the default ``model_type`` (``TRANSFORMER`` is for attention models), calibrated one sample per
item in the Calibration's order (NNCF's per-sample min/max averaging; deterministic). Both compile with the
inference precision hint f32: on AMX CPUs OpenVINO otherwise runs non-quantized ops in bf16, and oneDNN's
AMX-bf16 kernel for the padded conv3d_1 gives wrong showers (-24% energy). The op report reads the executed
precisions from the compiled model's runtime model.
"""

from __future__ import annotations

import functools
import importlib.util
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from gan.model import SHOWER_SHAPE, latent_input
from quant.base import OpPrecision, OpReport, VariantError, VariantUnavailable, read_variant_file, write_variant_file
from quant.calibration import Calibration
from quant.registry import VariantSpec, register

FP32, INT8 = "openvino-fp32", "openvino-int8"
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
# Kept f32 by build_int8(..., fp32_layers=FP32_HEAD): with CERN's weights, 8-bit activations into conv3d_3 (via
# the second upsampling) and conv3d_4 add ~+500% shower energy; dense_1, conv3d_1 and conv3d_2 INT8 cost ~3%.
FP32_HEAD = ("up_sampling3d_2", "conv3d_3", "conv3d_4")


@functools.cache
def _core():
    import openvino as ov

    return ov.Core()


class OpenVINOGenerator:
    """An OpenVINO generator model, compiled on first use for the CPU with f32 inference precision."""

    def __init__(self, name: str, model, info: dict):
        self.name, self.model, self.info = name, model, dict(info)
        self._compiled = self._size = None

    def compiled(self):
        if self._compiled is None:
            self._compiled = _core().compile_model(self.model, DEVICE, COMPILE_CONFIG)
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
        """One row per Dense/Conv3D layer with the precision its fused runtime node executes in."""
        layers = {op.get_friendly_name() for op in self.model.get_ordered_ops()
                  if op.get_type_name() in ("MatMul", "Convolution")}
        rows, others = [], Counter()
        for op in self.compiled().get_runtime_model().get_ordered_ops():
            kind, precision, fused = _runtime_info(op)
            if kind in COMPUTE_OPS:
                layer = next((n.split("/")[0] for n in fused if n.split("/")[0] in layers), op.get_friendly_name())
                rows.append(OpPrecision(layer, PRECISIONS.get(precision, precision), f"{kind} ({precision})"))
            elif kind not in QUIET_OPS:
                others[f"{kind} {precision}"] += 1
        notes = [f"inference precision hint {INFERENCE_PRECISION}",
                 "other runtime ops: " + ", ".join(f"{k} x{n}" for k, n in sorted(others.items()))]
        return OpReport(self.name, rows, REPORT_SOURCE, notes)


def _runtime_info(op) -> tuple[str, str, list[str]]:
    """(layerType, runtimePrecision, original op names fused into it) of a runtime-model node."""
    rt = op.get_rt_info()
    kind, precision, fused = (rt[k].astype(str) if k in rt else "" for k in
                              ("layerType", "runtimePrecision", "originalLayersNames"))
    return kind, precision, fused.split(",")


def _requires(variant: str, *modules: str):
    def check() -> None:
        for module in modules:
            if importlib.util.find_spec(module) is None:
                raise VariantUnavailable(variant, f"{module} not installed")
    return check


def _check_calibration(calibration) -> Calibration:
    if not isinstance(calibration, Calibration):
        raise VariantError(f"calibration must be a quant.calibration.Calibration, got {type(calibration).__name__}")
    return calibration


def quantize(model, calibration: Calibration, fp32_layers=()):
    """NNCF post-training INT8 of an OpenVINO generator model; ``fp32_layers`` (Keras names) stay unquantized.

    An UpSampling3D has its own input quantizer, so keeping a convolution's input f32 means listing the
    upsampling before it too (see ``FP32_HEAD``).
    """
    import nncf

    calibration = _check_calibration(calibration)
    dataset = nncf.Dataset(list(calibration.batches(batch_size=1)))
    ignored = nncf.IgnoredScope(names=list(fp32_layers)) if fp32_layers else None
    return nncf.quantize(model, dataset, preset=getattr(nncf.QuantizationPreset, NNCF_PRESET),
                         subset_size=len(calibration), ignored_scope=ignored)


def build_fp32(generator, calibration=None) -> OpenVINOGenerator:
    """The Keras generator as an OpenVINO FP32 model (calibration unused)."""
    from quant.openvino_graph import build_model

    return OpenVINOGenerator(FP32, build_model(generator), {"inference_precision": INFERENCE_PRECISION})


def build_int8(generator, calibration: Calibration, fp32_layers=()) -> OpenVINOGenerator:
    """NNCF INT8 of the OpenVINO generator, calibrated on ``calibration``."""
    from quant.openvino_graph import build_model

    model = quantize(build_model(generator), _check_calibration(calibration), fp32_layers)
    info = {"inference_precision": INFERENCE_PRECISION, "nncf_preset": NNCF_PRESET.lower(),
            "calibration_samples": len(calibration), "fp32_layers": list(fp32_layers)}
    return OpenVINOGenerator(INT8, model, info)


def load(directory, name: str | None = None) -> OpenVINOGenerator:
    """A variant saved by :meth:`OpenVINOGenerator.save`."""
    info = read_variant_file(directory)
    xml = Path(directory) / MODEL_XML
    if name is not None and info.get("variant") != name:
        raise VariantError(f"{directory}: holds variant '{info.get('variant')}', not '{name}'")
    if not xml.is_file():
        raise VariantError(f"{directory}: saved OpenVINO variant lacks {MODEL_XML}")
    variant = info.pop("variant")
    return OpenVINOGenerator(variant, _core().read_model(str(xml)), info)


register(VariantSpec(FP32, "OpenVINO FP32 (opset-built graph, inference precision f32)", build_fp32,
                     functools.partial(load, name=FP32), _requires(FP32, "openvino")))
register(VariantSpec(INT8, "OpenVINO + NNCF post-training INT8 (all Dense/Conv3D int8, rest f32)", build_int8,
                     functools.partial(load, name=INT8), _requires(INT8, "openvino", "nncf")))
