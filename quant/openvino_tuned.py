"""``openvino-int8-tuned``: NNCF's accuracy control with the physics objective, so layers that hurt the physics
fall back to FP32.

``nncf.quantize_with_accuracy_control`` quantizes like ``openvino-int8`` (PERFORMANCE preset, the Calibration one
sample per item), then reverts groups of quantizers to floating point, ranked by how much each reversion restores
the validation metric, until the metric drop is at most ``max_drop``. The metric is
:class:`quant.objective.PhysicsObjective`'s score on :data:`VALIDATION_SHOWERS` seeded inputs over the
Calibration's energy range, against the OpenVINO FP32 model's own showers; ``max_drop = 1 - TUNING_SCORE``
(absolute, from 1 for FP32) means "inside 3/4 of the tolerance table". The validation inputs are :data:`ITEMS` items,
each spanning the whole energy range (every k-th shower in energy order), so the objective can score any subset
NNCF asks for; every item also gets its own score (NNCF's per-item values). Ranking uses every item and one worker:
calibration, validation and tuning are deterministic for a given seed. Which layers fell back, the metric after
each stage and the trials (full validations, ranking validations, reverted groups in order, taken from NNCF's log)
are saved in ``variant.json`` and shown in the op report.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from quant.base import VariantError
from quant.context import QUICK_SHOWERS, as_context
from quant.objective import DEFAULT_SEED, DEFAULT_SHOWERS, TUNING_SCORE, PhysicsObjective
from quant.openvino import (
    INFERENCE_PRECISION,
    INT8_LAYERS,
    NNCF_PRESET,
    OPENVINO,
    OpenVINOGenerator,
    build_fp32,
    check_calibration,
    executed_precisions,
    load,
    requires,
)
from quant.registry import VariantSpec, register

if TYPE_CHECKING:
    from quant.calibration import Calibration

TUNED = "openvino-int8-tuned"
VALIDATION_SHOWERS = DEFAULT_SHOWERS  # seeded inputs of the objective (4 energy bins of 128)
ITEMS = 4  # validation items NNCF sees (32 showers each); each spans the whole energy range
BINS = 4
MAX_DROP = 1.0 - TUNING_SCORE
DROP_TYPE = "ABSOLUTE"
# NNCF's log lines: each group of operations it reverts to floating point, then the metric drop that results
REVERTED, DROPS = "Reverted ", ("Accuracy drop with the new quantization scope is ", "achieved required accuracy drop ")
QUANTIZED_METRIC, UNDONE = "Metric of quantized model: ", "Re-calculating ranking scores"  # re-ranks after an undo


class _Trials(logging.Handler):
    """The trials of NNCF's accuracy restorer, read from its log: each reverted group and the score after it."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.trials: list[dict] = []
        self.quantized_score: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(QUANTIZED_METRIC):
            self.quantized_score = round(float(message[len(QUANTIZED_METRIC):]), 4)
        elif message.startswith(REVERTED):
            self.trials.append({"reverted": [line.strip() for line in message.splitlines()[1:] if line.strip()]})
        elif self.trials and message.startswith(UNDONE):
            self.trials[-1]["undone"] = True
        elif self.trials and "score" not in self.trials[-1]:
            for prefix in DROPS:
                if prefix in message:
                    drop = float(message.split(prefix, 1)[1].split()[0])
                    self.trials[-1]["score"] = round(1.0 - drop, 4)


class PhysicsValidation:
    """The objective on seeded inputs, cut into items for NNCF, and a validation_fn that counts its calls."""

    def __init__(self, fp32_generate, energy_range, showers: int = VALIDATION_SHOWERS, seed: int = DEFAULT_SEED,
                 items: int = ITEMS, tolerances: dict | None = None):
        from gan.model import latent_input

        if showers < items * BINS:
            raise VariantError(f"need at least {items * BINS} validation showers, got {showers}")
        self.objective = PhysicsObjective.for_generator(fp32_generate, energy_range, showers, seed, BINS,
                                                        tolerances=tolerances)
        order = np.argsort(self.objective.energy, kind="stable")
        self.indices = [np.sort(order[k::items]) for k in range(items)]
        inputs = latent_input(self.objective.z, self.objective.energy)
        self.items = [(k, inputs[idx]) for k, idx in enumerate(self.indices)]
        self.validations = 0

    def dataset(self):
        import nncf

        return nncf.Dataset(self.items, lambda item: item[1])

    def score(self, indices: np.ndarray, showers: np.ndarray):
        o = self.objective
        sub = PhysicsObjective(o.z[indices], o.energy[indices], o.fp32_showers[indices], o.edges, o.tolerances)
        return sub.evaluate(showers)

    def __call__(self, compiled_model, items) -> tuple[float, list[float]]:
        """NNCF's validation_fn: (score of all given items together, score of each item)."""
        items = list(items)
        showers = [np.asarray(compiled_model(x)[0], np.float32) for _, x in items]
        per_item = [self.score(self.indices[k], s).score for (k, _), s in zip(items, showers, strict=True)]
        evaluation = self.score(np.concatenate([self.indices[k] for k, _ in items]), np.concatenate(showers))
        self.validations += 1
        return evaluation.score, per_item


def build_tuned(generator, calibration: Calibration, context=None, showers: int | None = None,
                seed: int = DEFAULT_SEED, max_drop: float = MAX_DROP) -> OpenVINOGenerator:
    """NNCF INT8 with accuracy control on the physics objective: ``showers`` inputs (default
    :data:`VALIDATION_SHOWERS`, a quick context :data:`~quant.context.QUICK_SHOWERS`) over the energy range of
    ``context`` (:class:`~quant.context.BuildContext` or model name; None: a weight file), its requirements."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    from quant.openvino_graph import build_model

    context = as_context(context)
    showers = showers or (QUICK_SHOWERS if context.quick else VALIDATION_SHOWERS)
    calibration = check_calibration(calibration)
    energy_range = tuple(context.energy_range_gev)
    if not energy_range[1] > energy_range[0]:
        raise VariantError(f"the energy range {energy_range} must span a range to draw validation inputs over")
    validation = PhysicsValidation(build_fp32(generator).generate, energy_range, showers, seed,
                                   tolerances=context.tolerances)
    trials, logger, start = _Trials(), logging.getLogger("nncf"), time.perf_counter()
    level = logger.level
    logger.addHandler(trials)
    logger.setLevel(logging.INFO)  # the trials are read from NNCF's INFO log, even where a caller quietened it
    try:
        model = nncf.quantize_with_accuracy_control(
            build_model(generator), nncf.Dataset(list(calibration.batches(batch_size=1))), validation.dataset(),
            validation, max_drop=max_drop, drop_type=getattr(nncf.DropType, DROP_TYPE),
            preset=getattr(nncf.QuantizationPreset, NNCF_PRESET), subset_size=len(calibration),
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                ranking_subset_size=len(validation.items), num_ranking_workers=1))
    finally:
        logger.removeHandler(trials)
        logger.setLevel(level)
    seconds = time.perf_counter() - start
    variant = OpenVINOGenerator(TUNED, model, {"inference_precision": INFERENCE_PRECISION})
    executed = executed_precisions(variant, [layer.name for layer in generator.layers
                                             if type(layer).__name__ in INT8_LAYERS])
    final = validation.objective.evaluate_generator(variant.generate)
    tuning = {"seconds": round(seconds, 1), "validations": validation.validations,
              "quantized_score": trials.quantized_score, "trials": trials.trials,
              "final_score": round(final.score, 4), "final_worst": final.worst,
              "tolerances": context.tolerance_source}
    fallback = [layer for layer, p in executed.items() if p != "int8"]
    variant.info.update(
        nncf_preset=NNCF_PRESET.lower(), calibration_samples=len(calibration), validation_showers=showers,
        validation_seed=seed, validation_energy_range=list(energy_range), max_drop=max_drop, drop_type=DROP_TYPE,
        fallback_layers=fallback, tuning=tuning, report_notes=_notes(fallback, tuning, max_drop))
    return variant


def _notes(fallback: list[str], tuning: dict, max_drop: float) -> list[str]:
    trials = "; ".join(f"{'+'.join(t['reverted'])} -> {t.get('score', '?')}{' (undone)' if t.get('undone') else ''}"
                       for t in tuning["trials"]) or "none"
    return [f"accuracy control: physics score drop <= {max_drop:g} (absolute); fell back to FP32: "
            f"{', '.join(fallback) or 'nothing'}",
            f"tuning: {tuning['validations']} physics validations in {tuning['seconds']:g} s; all-INT8 score "
            f"{tuning['quantized_score']}; trials (group reverted -> score): {trials}",
            f"final physics score {tuning['final_score']:g} (worst: {tuning['final_worst']})"]


register(VariantSpec(TUNED, "OpenVINO + NNCF INT8 with accuracy control on the physics objective (FP32 fallbacks)",
                     OPENVINO, build_tuned, functools.partial(load, name=TUNED), requires(TUNED, "openvino", "nncf"),
                     slow_build=True))
