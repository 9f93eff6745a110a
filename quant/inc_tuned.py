"""``inc-int8-tuned``: INC's accuracy-driven tuning, with the shower physics as its evaluation function.

``neural_compressor.tensorflow.autotune`` quantizes with each configuration of a set in turn, scores each candidate
with ``eval_fn`` (higher is better) and stops at the first within ``tolerable_loss`` of the FP32 baseline. Our
``eval_fn`` is :class:`quant.objective.PhysicsObjective`: the candidate's showers against the FP32 generator's for
the same seeded inputs, in tolerance units (1 = FP32, :data:`~quant.objective.TUNING_SCORE` = at 3/4 of the
tolerance table). INC's loss is relative to its baseline (the frozen FP32 graph, score ~1), so the tolerable loss
is set to ``1 - TUNING_SCORE / baseline``: a candidate is accepted exactly when it is inside 3/4 of the tolerance table.

INC 3.x (TF) has no fallback strategy of its own, so the candidates follow INC 2.x's "basic" strategy, stopping at
the first accepted one:

1. every layer int8;
2. one layer fp32 at a time (each layer the all-int8 candidate had in int8), in model order;
3. accumulated fallback: layers ranked by the score their own fallback reached in stage 2 (best first, ties in
   model order), the first 2, 3, ... of them fp32;
4. after an accepted stage-3 candidate, each of its fallbacks (last added first) back to int8 if the objective
   still accepts that (ties in stage 2 rank layers only by model order, so a prefix may hold harmless layers).

Deterministic for a seed: minmax calibration, seeded objective inputs, stable ranking. Every trial (its int8 and
fp32 layers as read from the candidate graph, score, worst observable) is kept in ``info["tuning"]`` and the op
report. On stock TensorFlow only ``dense_1`` is quantizable, so tuning takes one or two trials there.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from gan.model import generate as keras_generate
from quant.base import VariantError
from quant.context import QUICK_SHOWERS, as_context
from quant.inc import (
    BATCH_SIZE,
    GRANULARITY,
    INC,
    IncVariant,
    _calibration_inputs,
    calibration_loader,
    check,
    frozen_layers,
    inc_session,
    load,
    quant_config,
)
from quant.objective import DEFAULT_SEED, DEFAULT_SHOWERS, TUNING_SCORE, PhysicsObjective
from quant.registry import VariantSpec, register

if TYPE_CHECKING:
    from quant.calibration import Calibration

NAME = "inc-int8-tuned"
OBJECTIVE_SHOWERS = DEFAULT_SHOWERS  # seeded showers each candidate is scored on
OBJECTIVE_BINS = 4  # energy bins of the objective over the calibration's energy range


class _Scorer:
    """INC's ``eval_fn``: scores a candidate graph on the objective's inputs; ``last`` describes the latest one."""

    def __init__(self, objective: PhysicsObjective, input_name: str, output_name: str, layers):
        self.objective, self.input_name, self.output_name, self.layers = objective, input_name, output_name, layers
        self.last: dict = {}
        self._seen: dict[str, dict] = {}  # graph digest -> trial record (INC re-evaluates its baseline each call)

    def showers(self, graph_def) -> np.ndarray:
        import tensorflow as tf

        from gan.model import latent_input
        from quant.inc_graph import graph_function

        run, x = graph_function(graph_def, self.input_name, self.output_name), latent_input(self.objective.z,
                                                                                          self.objective.energy)
        return np.concatenate([run(tf.constant(x[i:i + BATCH_SIZE])).numpy()[..., 0]
                               for i in range(0, len(x), BATCH_SIZE)])

    def score(self, graph_def) -> tuple[float, str]:
        """(score, worst observable) of a candidate graph."""
        evaluation = self.objective.evaluate(self.showers(graph_def))
        return evaluation.score, evaluation.worst

    def __call__(self, model) -> float:
        from quant.inc_graph import op_precisions

        graph_def = model.graph_def
        digest = hashlib.sha1(graph_def.SerializeToString(deterministic=True)).hexdigest()
        if digest not in self._seen:
            score, worst = self.score(graph_def)
            rows = op_precisions(graph_def, self.layers)
            int8 = [layer for layer in self.layers if any(r.op == layer and r.precision == "int8" for r in rows)]
            self._seen[digest] = {"int8": int8, "fp32": [layer for layer in self.layers if layer not in int8],
                                  "score": round(score, 4), "worst": worst, "accepted": score >= TUNING_SCORE}
        self.last = self._seen[digest]
        return self.last["score"]


def _autotune(model, config, scorer: _Scorer, tolerable_loss: float, loader):
    """INC's ``autotune`` of one candidate configuration: (its graph, its trial record)."""
    from neural_compressor.tensorflow.quantization import TuningConfig, autotune

    tune_config = TuningConfig(config_set=[config], tolerable_loss=tolerable_loss, max_trials=1)
    picked = autotune(model, tune_config, eval_fn=scorer, calib_dataloader=loader, calib_iteration=len(loader))
    if picked is None:
        raise VariantError(f"{NAME}: neural-compressor's autotune returned no model")
    return picked.graph_def, dict(scorer.last)  # autotune scores the baseline first, then the candidate


def _single_fallback_scores(trials, quantizable) -> dict[str, float]:
    """Layer -> score of the trial where it alone (of the quantizable layers) was fp32."""
    scores = {}
    for trial in trials:
        fallen = [layer for layer in trial["fp32"] if layer in quantizable]
        if len(fallen) == 1:
            scores[fallen[0]] = trial["score"]
    return scores


class _Search:
    """The staged fallback search; each candidate (a set of fp32 layers) is tried at most once."""

    def __init__(self, model, nodes: dict, scorer: _Scorer, tolerable_loss: float, loader, per_channel: bool):
        self.model, self.nodes, self.scorer, self.loss, self.loader = model, nodes, scorer, tolerable_loss, loader
        self.per_channel = per_channel
        self.trials: list[dict] = []
        self.tried: dict[frozenset, tuple] = {}  # fp32 layers -> (graph, trial record)

    def accepted(self, fp32_layers) -> bool:
        key = frozenset(fp32_layers)
        if key not in self.tried:
            fp32_nodes = [node for layer in fp32_layers for node in self.nodes[layer]]
            config = quant_config(self.per_channel, fp32_nodes)
            self.tried[key] = _autotune(self.model, config, self.scorer, self.loss, self.loader)
            self.trials.append(self.tried[key][1])
        return self.tried[key][1]["accepted"]

    def first_accepted(self, candidates):
        return next((fp32 for fp32 in candidates if self.accepted(fp32)), None)

    def run(self) -> tuple:
        """(graph, trial record) of the accepted candidate with the fewest fallbacks found, else of the best one."""
        fallback = self.first_accepted([()])
        quantizable = self.trials[0]["int8"]
        if fallback is None:
            fallback = self.first_accepted([(layer,) for layer in quantizable])
        if fallback is None:
            score = _single_fallback_scores(self.trials, quantizable)
            ranked = sorted(quantizable, key=lambda layer: (-score.get(layer, 0.0), quantizable.index(layer)))
            fallback = self.first_accepted([tuple(ranked[:k]) for k in range(2, len(ranked) + 1)])
            for layer in reversed(fallback or ()):  # stage 4: back to int8 where the objective still accepts it
                candidate = tuple(other for other in fallback if other != layer)
                if self.accepted(candidate):
                    fallback = candidate
        if fallback is not None:
            return self.tried[frozenset(fallback)]
        return max(self.tried.values(), key=lambda graph_and_trial: graph_and_trial[1]["score"])


def tune(graph_def, nodes: dict, scorer: _Scorer, inputs: np.ndarray, per_channel: bool = False):
    """(tuned GraphDef, its trial record, all trials, baseline score) by the staged search of the module docstring.

    Each candidate is its own ``autotune`` call: INC 3.0.2's ``BaseConfig.__eq__`` ignores per-op settings, so one
    call over several fallback configurations would skip all but the first as "already verified".
    """
    with inc_session(graph_def) as model:
        baseline = scorer(model)
        if baseline < TUNING_SCORE:
            raise VariantError(f"{NAME}: the frozen FP32 graph itself scores {baseline:.3f} < {TUNING_SCORE}")
        search = _Search(model, nodes, scorer, 1 - TUNING_SCORE / baseline, calibration_loader(inputs), per_channel)
        tuned, picked = search.run()
    return tuned, picked, search.trials, baseline


class TunedIncVariant(IncVariant):
    """An INC-tuned graph; the op report lists the tuning trials."""

    def _fp32_reason(self, layer: str) -> str:
        if layer in self.info.get("fp32_layers", ()):
            return "fell back to fp32 in tuning (int8 failed the physics objective)"
        return super()._fp32_reason(layer)

    def _notes(self) -> list[str]:
        tuning, objective = self.info["tuning"], self.info["tuning"]["objective"]
        low, high = objective["energy_range_gev"]
        notes = [f"INC autotune, eval_fn = physics objective ({objective['showers']} showers, seed "
                 f"{objective['seed']}, {low:g}-{high:g} GeV in {objective['bins']} bins); accept score >= "
                 f"{TUNING_SCORE:.3f} (inside 3/4 of the tolerance table); FP32 baseline {tuning['baseline']:.4f}"]
        for i, trial in enumerate(tuning["trials"], 1):
            verdict = ("accepted" if trial["accepted"] else "rejected") + (", picked" if i == tuning["picked_trial"]
                                                                           else "")
            notes.append(f"trial {i}: int8 {', '.join(trial['int8']) or 'none'} | fp32 {', '.join(trial['fp32'])}: "
                         f"score {trial['score']:.4f} {verdict} (worst: {trial['worst']})")
        if not tuning["accepted"]:
            notes.append("no candidate was accepted: this is the best one INC found")
        return notes


def build(generator, calibration: Calibration, context=None, per_channel: bool = False, seed: int = DEFAULT_SEED,
          showers: int | None = None) -> TunedIncVariant:
    """INC INT8 of ``generator`` tuned on ``showers`` seeded showers (``seed``; default
    :data:`OBJECTIVE_SHOWERS`, a quick context :data:`~quant.context.QUICK_SHOWERS`) over the energy range of
    ``context`` (:class:`~quant.context.BuildContext` or model name; None: a weight file), against its
    requirements."""
    from quant.inc_graph import op_precisions

    context = as_context(context)
    showers = showers or (QUICK_SHOWERS if context.quick else OBJECTIVE_SHOWERS)
    inputs = _calibration_inputs(calibration)
    graph_def, input_name, output_name, layers, nodes = frozen_layers(generator)
    energy_range = tuple(context.energy_range_gev)
    objective = PhysicsObjective.for_generator(lambda z, e: keras_generate(generator, z, e), energy_range,
                                               n=showers, seed=seed, bins=OBJECTIVE_BINS,
                                               tolerances=context.tolerances)
    scorer = _Scorer(objective, input_name, output_name, layers)
    tuned, picked, trials, baseline = tune(graph_def, nodes, scorer, inputs, per_channel)
    quantizable = trials[0]["int8"]  # what INC put in int8 with nothing excluded
    int8 = {row.op for row in op_precisions(tuned, layers) if row.precision == "int8"}
    info = {"input": input_name, "output": output_name, "layers": layers, "calibration_samples": len(inputs),
            "weight_granularity": GRANULARITY[per_channel],
            "fp32_layers": [layer for layer in quantizable if layer not in int8],  # the fallbacks
            "tuning": {"objective": {"showers": showers, "seed": seed, "energy_range_gev": list(energy_range),
                                     "bins": OBJECTIVE_BINS, "tolerances": context.tolerance_source},
                       "baseline": round(baseline, 4), "accepted": picked["accepted"],
                       "picked_trial": trials.index(picked) + 1, "trials": trials}}
    return TunedIncVariant(tuned, info, NAME)


def load_tuned(directory) -> TunedIncVariant:
    return load(directory, NAME, TunedIncVariant)


register(VariantSpec(NAME, "INC INT8 with accuracy-driven fallback to fp32 (physics objective as eval_fn)", INC,
                     build, load_tuned, lambda: check(NAME), slow_build=True))
