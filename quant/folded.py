"""The folded variants: the exact rewrite of :mod:`quant.fold`, then a precision on top of it.

- ``folded``: the folded Keras model in float32 as one ``tf.function`` (exact: relative L2 ~1e-6 vs ``fp32``).
- ``folded-bf16``: the folded Keras model in Keras ``mixed_bfloat16`` (the output ReLU float32). The merged Dense
  replaces conv3d_1, whose 6x6x8 SAME bf16 kernel is wrong on AMX with TF 2.21; the folded convolutions have
  other shapes, so on AMX this variant's physics is what the validation suite says, not assumed.
- ``folded-openvino`` / ``folded-openvino-bf16``: the folded graph built with OpenVINO's opset API
  (:func:`quant.openvino_graph.build_model`), inference precision f32 / bf16.
- ``folded-int8w-dense``: OpenVINO f32 with the merged Dense's weights stored int8 (weight-only, per output
  channel, decompressed on the fly). At batch 1 reading the merged Dense's 20 MB of float32 weights dominates the
  call. Activations stay f32: int8 of its input (the latent vector, per tensor) costs -21% energy on the default
  model, and bf16 convolutions move CERN's shower widths and hit counts by 2-5% (the validation suite's verdict).
- ``folded-auto-mixed``: :mod:`quant.auto_mixed` on the folded layers (per-layer int8 / bf16 / fp32 on OpenVINO,
  the same sweep, cost model and physics objective, with the original model's tolerances).

Every build checks the fold: the folded graph in float32 (Keras, and the exported OpenVINO graph for the
OpenVINO variants) against the original ``fp32`` generator on seeded inputs; more than
:data:`quant.fold.BUILD_LIMIT` relative L2 error is a build error. The op report states the measured error of
the fold and of the variant itself. Keras variants are saved as the original weights (the fold is redone and
re-checked at load, ~2 s); OpenVINO variants as their IR.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant import fold
from quant.base import OpReport, write_variant_file
from quant.cpu import BF16_FLAGS, require_any
from quant.fp32 import KERAS, WEIGHTS_FILE, KerasVariant, clone_generator, load_generator_from
from quant.openvino import OPENVINO
from quant.registry import VariantSpec, register

FOLDED, BF16, OV_FP32, OV_BF16, OV_INT8_DENSE, AUTO_MIXED = (
    "folded", "folded-bf16", "folded-openvino", "folded-openvino-bf16", "folded-int8w-dense", "folded-auto-mixed")
OPENVINO_PRECISION = {OV_FP32: "fp32", OV_BF16: "bf16"}  # build_mixed's precision of every layer
MIXED = "mixed_bfloat16"
OUTPUT_LAYER = "re_lu_1"  # kept float32 in folded-bf16: float32 output
BF16_NEEDS = "AMX-BF16 or AVX512-BF16"
KERAS_SOURCE = "Keras dtype policy of the folded model"


@dataclass(frozen=True)
class Fold:
    """A generator's folded Keras model, its checked exactness and the original's showers it was checked on."""

    model: object
    check: fold.Exactness
    reference: np.ndarray  # original fp32 showers for fold.exactness_inputs()

    def error_vs_original(self, generate) -> fold.Exactness:
        z, energy = fold.exactness_inputs(self.check.showers, self.check.seed)
        return fold.compare(self.reference, generate(z, energy), self.check.showers, self.check.seed)


_FOLDS: dict[str, Fold] = {}  # weights sha256 -> its Fold: one fold (and one check) per generator
_MAX_FOLDS = 4


def folded_for(generator) -> Fold:
    """The checked fold of ``generator`` (a VariantError if it is not exact); cached by its weights."""
    from quant import fp32
    from quant.base import weights_sha256

    key = weights_sha256(generator)
    if key not in _FOLDS:
        model = fold.fold_generator(generator)
        z, energy = fold.exactness_inputs()
        reference = fp32.build(generator).generate(z, energy)
        check = fold.compare(reference, KerasVariant("folded-check", model, "").generate(z, energy),
                             len(z), fold.EXACTNESS_SEED)
        while len(_FOLDS) >= _MAX_FOLDS:
            _FOLDS.pop(next(iter(_FOLDS)))
        _FOLDS[key] = Fold(model, fold.require_exact(check, "fold of the Keras generator"), reference)
    return _FOLDS[key]


def fold_notes(generator, folded: Fold) -> list[str]:
    before, after = fold.macs_per_shower(generator), fold.macs_per_shower(folded.model)
    return [folded.check.format() + " (folded float32 vs the original fp32 generator)",
            f"multiply-adds per shower: {sum(before.values()) / 1e6:.0f} M -> {sum(after.values()) / 1e6:.0f} M "
            f"({', '.join(f'{k} {v / 1e6:.1f} M' for k, v in after.items())})",
            f"{fold.MERGED_DENSE} = dense_1 + conv3d_1 as one Dense; conv3d_k{fold.PHASES} = up_sampling3d + "
            f"zero_padding3d + conv3d_k as one low-resolution convolution, then {fold.DEPTH_TO_SPACE}_k "
            "(interleave, crop); BatchNormalization layers unchanged"]


class FoldedKerasVariant(KerasVariant):
    """The folded Keras model with per-layer dtype policies; saved as the original generator's weights."""

    def __init__(self, name: str, generator, policy, notes=()):
        self.fold = folded_for(generator)
        model = clone_generator(self.fold.model, policy)
        super().__init__(name, model, KERAS_SOURCE, fold_notes(generator, self.fold) + list(notes))
        self.original = generator

    def save(self, directory) -> Path:
        from gan.weights import save_weights

        directory = Path(directory)
        save_weights(self.original, directory / WEIGHTS_FILE, {"variant": self.name})
        write_variant_file(directory, self.name, weights=WEIGHTS_FILE, folded_at_load=True,
                           fold_relative_l2=self.fold.check.relative_l2)
        return directory

    def size_bytes(self) -> int:
        """Bytes of the weights as saved (the original's, float32); in memory the merged Dense holds 5 M more."""
        return sum(4 * int(np.prod(w.shape)) for w in self.original.weights)

    def op_report(self) -> OpReport:
        report = super().op_report()
        if self.name != FOLDED:
            report.notes.insert(0, own_error_note(self.fold, self.generate))
        return report


def own_error_note(folded: Fold, generate) -> str:
    """How far a reduced-precision folded variant is from the original fp32 (seeded inputs)."""
    result = folded.error_vs_original(generate)
    return (f"this variant vs the original fp32: relative L2 {result.relative_l2:.2g}, energy ratio "
            f"{result.energy_ratio:.4f} ({result.showers} seeded showers; precision loss, judged by validation)")


def build_folded(generator, calibration=None, context=None) -> FoldedKerasVariant:
    return FoldedKerasVariant(FOLDED, generator, lambda name: "float32")


def build_bf16(generator, calibration=None, context=None) -> FoldedKerasVariant:
    require_any(BF16, BF16_FLAGS, BF16_NEEDS)
    notes = ["bf16 kernels: AMX where the CPU has it, else AVX512-BF16 (oneDNN)"]
    return FoldedKerasVariant(BF16, generator, lambda name: "float32" if name == OUTPUT_LAYER else MIXED, notes)


def build_openvino(generator, calibration=None, context=None, name: str = OV_FP32):
    """The folded graph on OpenVINO as variant ``name``; its f32 export is checked against the original before any
    precision is applied."""
    from quant import openvino

    folded = folded_for(generator)
    exported = openvino.build_mixed(folded.model, None, {}, name=name)
    export_check = fold.require_exact(folded.error_vs_original(exported.generate),
                                      "OpenVINO export of the folded generator")
    notes = fold_notes(generator, folded) + [export_check.format() + " (OpenVINO f32 export vs fp32)"]
    if name == OV_FP32:
        variant = exported
    else:
        variant = (_int8_dense_weights(folded.model) if name == OV_INT8_DENSE else
                   openvino.build_mixed(folded.model, None, {}, name=name, default=OPENVINO_PRECISION[name]))
        notes.insert(0, own_error_note(folded, variant.generate))
    variant.info["report_notes"] = notes
    return variant


def _int8_dense_weights(folded):
    """The merged Dense's weights int8 (NNCF weight compression, symmetric per output channel), decompressed on
    the fly; activations and every other op f32. Quantizing its input (the latent vector, per tensor) instead
    costs -21% energy on the default model: low-energy inputs are a few int8 steps wide."""
    import nncf

    from quant import openvino
    from quant.openvino_graph import build_model

    model = nncf.compress_weights(build_model(folded), mode=nncf.CompressWeightsMode.INT8_SYM,
                                  ignored_scope=nncf.IgnoredScope(types=["Convolution"]))
    info = {"inference_precision": openvino.INFERENCE_PRECISION, "int8_weights": [fold.MERGED_DENSE],
            "weight_compression": "int8_sym per channel"}
    return openvino.OpenVINOGenerator(OV_INT8_DENSE, model, info)


def build_auto_mixed(generator, calibration, context=None):
    """auto-mixed on the folded layers, judged with the original model's requirements (``context``'s)."""
    from quant import auto_mixed

    folded = folded_for(generator)
    variant = auto_mixed.build(folded.model, calibration, context, name=AUTO_MIXED)
    variant.inner.info["report_notes"] = fold_notes(generator, folded)
    return variant


def cached_sweep(model: str, precision: str = "int8", runtime: str = "openvino"):
    """The cached sensitivity sweep of ``model``'s folded layers (``python -m quant sensitivity --folded`` or a
    ``folded-auto-mixed`` build made it), or None: never measures."""
    from gan.pretrained import load_generator
    from quant import sensitivity

    generator = load_generator(model)
    sweep = sensitivity.cached_results(model, precision, runtime, generator=folded_for(generator).model)
    if sweep is not None:
        sweep.model = f"{model} (folded)"
    return sweep


def _load_keras(name: str, build):
    def load(directory):
        return build(load_generator_from(directory, name))
    return load


def _load_openvino(name: str):
    def load(directory):
        from quant import openvino

        return openvino.load(directory, name=name)
    return load


def _load_auto_mixed(directory):
    from quant import auto_mixed

    return auto_mixed.load(directory, name=AUTO_MIXED)


def _requires(name: str, *modules: str, bf16: bool = False):
    from quant.openvino import requires

    return requires(name, *modules, bf16=bf16)


def _bf16_check() -> None:
    require_any(BF16, BF16_FLAGS, BF16_NEEDS)


register(VariantSpec(FOLDED, "exact rewrite (dense_1+conv3d_1 merged, sub-pixel conv2/conv3), Keras float32",
                     KERAS, build_folded, _load_keras(FOLDED, build_folded)))
register(VariantSpec(BF16, "folded generator in Keras mixed_bfloat16 (output float32)", KERAS, build_bf16,
                     _load_keras(BF16, build_bf16), _bf16_check))
register(VariantSpec(OV_FP32, "folded generator on OpenVINO, inference precision f32", OPENVINO, build_openvino,
                     _load_openvino(OV_FP32), _requires(OV_FP32, "openvino")))
register(VariantSpec(OV_BF16, "folded generator on OpenVINO, inference precision bf16", OPENVINO,
                     functools.partial(build_openvino, name=OV_BF16), _load_openvino(OV_BF16),
                     _requires(OV_BF16, "openvino", bf16=True)))
register(VariantSpec(OV_INT8_DENSE, "folded generator on OpenVINO f32, merged Dense weights int8 (weight-only)",
                     OPENVINO, functools.partial(build_openvino, name=OV_INT8_DENSE), _load_openvino(OV_INT8_DENSE),
                     _requires(OV_INT8_DENSE, "openvino", "nncf")))
register(VariantSpec(AUTO_MIXED, "auto-mixed (per-layer int8/bf16/fp32 on OpenVINO) on the folded layers",
                     OPENVINO, build_auto_mixed, _load_auto_mixed, _requires(AUTO_MIXED, "openvino", "nncf"),
                     slow_build=True))
