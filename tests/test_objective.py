"""quant.objective: candidate showers scored against FP32 showers in tolerance units (numpy only)."""

import numpy as np
import pytest

from quant.objective import ACCEPT_SCORE, EXCLUDED, PhysicsObjective, strictest_tolerances
from tests.synthetic import synthetic_showers

TOLERANCES = {"total_energy_mean": 0.05, "energy_resolution": 0.5, "longitudinal_profile": 0.1,
              "transverse_profile_x": 0.1, "transverse_profile_y": 0.1, "centroid_x": 0.5, "centroid_y": 0.5,
              "centroid_z": 0.5, "second_moment_x": 0.2, "second_moment_y": 0.2, "second_moment_z": 0.2,
              "hits_mean": 0.2}


@pytest.fixture(scope="module")
def objective():
    energy = np.linspace(20, 240, 80).astype(np.float32)
    showers = synthetic_showers(energy, seed=3)
    return PhysicsObjective(np.zeros((80, 200), np.float32), energy, showers, np.array([10.0, 130.0, 250.0]),
                            TOLERANCES)


def test_fp32_itself_scores_one(objective):
    result = objective.evaluate(objective.fp32_showers)
    assert (result.score, result.worst_ratio, result.accuracy_metric) == (1.0, 0.0, 0.0)
    assert result.accepted


@pytest.mark.parametrize(("scale", "accepted"), [(1.02, True), (1.049, True), (1.10, False), (0.5, False)])
def test_energy_scale_is_judged_against_its_tolerance(objective, scale, accepted):
    result = objective.evaluate(objective.fp32_showers * scale)
    assert result.worst_ratio == pytest.approx(abs(scale - 1) / TOLERANCES["total_energy_mean"], rel=1e-3)
    assert result.accepted is accepted
    assert result.score == pytest.approx(1 / (1 + result.worst_ratio))
    assert "total_energy_mean" in result.worst


def test_score_is_accept_score_exactly_at_tolerance(objective):
    assert ACCEPT_SCORE == 1 / (1 + 1.0)


def test_empty_showers_are_worst(objective):
    result = objective.evaluate(np.zeros_like(objective.fp32_showers))
    assert not result.accepted and result.score < 0.1


def test_for_generator_is_seeded():
    calls = []

    def generate(z, energy):
        calls.append((z, energy))
        return synthetic_showers(energy, seed=1)

    a = PhysicsObjective.for_generator(generate, (10, 250), n=16, seed=5, tolerances=TOLERANCES)
    b = PhysicsObjective.for_generator(generate, (10, 250), n=16, seed=5, tolerances=TOLERANCES)
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_array_equal(a.energy, b.energy)
    assert a.energy.min() >= 10 and a.energy.max() <= 250 and len(a.edges) == 5


def test_strictest_tolerances_take_the_minimum_over_models_and_bins():
    from verdict import requirements

    both = strictest_tolerances()
    for model in ("default", "cern2017"):
        own = requirements.load(model)
        assert strictest_tolerances([model]) == own.strictest()
        assert all(both[name] <= min(values) for name, values in own.values.items())


def test_strictest_tolerances_are_physics_scales():
    tolerances = strictest_tolerances()
    assert not set(EXCLUDED) & set(tolerances)
    assert 0.005 < tolerances["total_energy_mean"] < 0.02  # ~1% energy response


def test_build_context_names_the_model_and_its_requirements_without_hashing_weights():
    from quant import objective
    from quant.context import BuildContext, as_context

    cern = BuildContext.for_model("cern2017")
    assert cern.model == "cern2017" and cern.energy_range_gev == (100.0, 500.0)
    assert cern.tolerances == objective.model_requirements("cern2017") and "'cern2017'" in cern.tolerance_source
    weight_file = BuildContext.for_model("runs/mine/generator.h5")
    assert weight_file.model is None and weight_file.energy_range_gev == (10.0, 250.0)
    assert weight_file.tolerances == strictest_tolerances() and weight_file.label == "weight file"
    assert as_context("default") == BuildContext.for_model("default") and as_context(None) == weight_file
    assert as_context(cern) is cern and cern.quickly().quick and not cern.quick
    assert not hasattr(objective, "identify_model") and not hasattr(objective, "model_tolerances")
