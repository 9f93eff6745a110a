"""``inc-int8-tuned``: INC's autotune with the physics objective; trials recorded, deterministic, staged fallback."""

import numpy as np
import pytest

from quant import registry
from quant.calibration import make_calibration
from quant.inc import itex_installed
from quant.objective import TUNING_SCORE

NAME = "inc-int8-tuned"
TRIAL_KEYS = {"int8", "fp32", "score", "worst", "accepted"}
SHOWERS = 64  # objective showers: fewer than the builder's default, to keep the tests short

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def generator(seeded_generator):
    reason = registry.unavailable_reason(NAME)
    if reason:
        pytest.skip(reason)
    return seeded_generator


def _build(generator, seed=7):
    from quant.inc_tuned import build

    return build(generator, make_calibration(16, seed=0), seed=seed, showers=SHOWERS)


@pytest.fixture(scope="module")
def tuned(generator):
    return _build(generator)


def test_info_lists_trials_and_the_fallbacks(tuned):
    tuning = tuned.info["tuning"]
    trials = tuning["trials"]
    assert trials and all(set(trial) == TRIAL_KEYS for trial in trials)
    assert all(trial["accepted"] == (trial["score"] >= TUNING_SCORE) for trial in trials)
    assert tuning["accepted"] == any(t["accepted"] for t in trials) == trials[tuning["picked_trial"] - 1]["accepted"]
    assert (tuned.info["fp32_layers"] == []) == trials[0]["accepted"]  # fallbacks exactly when all-int8 failed
    first = trials[0]  # every layer INC can quantize here in int8
    assert first["int8"] == (["dense_1", "conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4"] if itex_installed()
                             else ["dense_1"])
    rows = {row.op: row for row in tuned.op_report().rows}
    assert sorted(tuned.info["fp32_layers"]) == sorted(layer for layer in first["int8"]
                                                       if rows[layer].precision == "fp32")
    assert all("fell back to fp32 in tuning" in rows[layer].note for layer in tuned.info["fp32_layers"])
    notes = tuned.op_report().notes
    assert any(note.startswith("INC autotune, eval_fn = physics objective") for note in notes)
    assert sum(note.startswith("trial ") for note in notes) == len(trials)


def test_accepted_variant_is_inside_the_tolerance_table(generator, tuned):
    """Re-scored on the objective it was tuned on, the picked graph scores what INC recorded for it."""
    from gan.model import generate
    from quant.objective import PhysicsObjective

    if not tuned.info["tuning"]["accepted"]:
        pytest.fail(f"nothing accepted: {tuned.info['tuning']['trials']}")
    spec = tuned.info["tuning"]["objective"]
    objective = PhysicsObjective.for_generator(lambda z, e: generate(generator, z, e), spec["energy_range_gev"],
                                               n=spec["showers"], seed=spec["seed"], bins=spec["bins"])
    assert objective.evaluate_generator(tuned.generate).score >= TUNING_SCORE


def test_deterministic_for_a_seed(generator, tuned):
    again = _build(generator)
    assert again.info["fp32_layers"] == tuned.info["fp32_layers"]
    assert [(t["int8"], t["accepted"]) for t in again.info["tuning"]["trials"]] == \
        [(t["int8"], t["accepted"]) for t in tuned.info["tuning"]["trials"]]
    np.testing.assert_allclose([t["score"] for t in again.info["tuning"]["trials"]],
                               [t["score"] for t in tuned.info["tuning"]["trials"]], atol=1e-3)


def test_save_load_keeps_the_trials(tuned, tmp_path):
    loaded = registry.load(tuned.save(tmp_path / NAME))
    assert type(loaded) is type(tuned) and loaded.info == tuned.info
    assert loaded.op_report().notes == tuned.op_report().notes


def test_staged_fallback_finds_the_layers_a_scorer_rejects(generator):
    """A stand-in objective that rejects int8 in given layers: the search must end with exactly those fp32."""
    from quant.inc import frozen_layers
    from quant.inc_graph import op_precisions
    from quant.inc_tuned import _Scorer, tune

    bad = {"conv3d_3", "conv3d_4"} if itex_installed() else {"dense_1"}

    class Rejecting(_Scorer):
        def score(self, graph_def):  # from the candidate's precisions alone: more bad int8 layers, lower
            int8 = {r.op for r in op_precisions(graph_def, self.layers) if r.precision == "int8"}
            return (1.0 if not int8 & bad else 0.4 / (1 + len(int8 & bad)) - 0.01 * len(int8)), ""

    graph_def, input_name, output_name, layers, nodes = frozen_layers(generator)
    scorer = Rejecting(None, input_name, output_name, layers)
    tuned, picked, trials, baseline = tune(graph_def, nodes, scorer, make_calibration(16, 0).generator_inputs())
    quantizable, int8 = trials[0]["int8"], {row.op for row in op_precisions(tuned, layers) if row.precision == "int8"}
    assert baseline == 1.0 and picked["accepted"] and set(quantizable) - int8 == bad
    assert [t["accepted"] for t in trials] == [False] * (len(trials) - 1) + [True]
    assert len(trials) == (1 + len(quantizable) + 1 if len(bad) > 1 else 2)  # all int8, singles, the first pair
