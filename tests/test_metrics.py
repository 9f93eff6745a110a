"""Tests for gan.metrics (the single-number shower-accuracy metric)."""

import ast
import math
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import synthetic_showers

from gan import metrics

SETTINGS = settings(max_examples=50, deadline=None)


@pytest.fixture(scope="module")
def sample():
    energy = np.repeat([30.0, 120.0, 220.0], 10)
    return synthetic_showers(energy, shape=(12, 12, 16)), energy


def test_identical_samples_score_exactly_zero(sample):
    ecal, energy = sample
    result = metrics.accuracy_metric(ecal, energy, ecal.copy(), energy.copy())
    assert result["moment_error"] == 0.0
    assert result["profile_error"] == 0.0
    assert result["total"] == 0.0
    assert result["bins_used"] == 3 == len(result["per_bin"])
    assert [(b["e_low"], b["e_high"]) for b in result["per_bin"]] == [
        (10.0, 50.0), (100.0, 150.0), (200.0, 250.0)]
    assert all(b["n_ref"] == b["n_cand"] == 10 for b in result["per_bin"])
    assert metrics.higher_is_better(result["total"]) == 1.0


def test_scaled_candidate_has_profile_error_only(sample):
    ecal, energy = sample
    result = metrics.accuracy_metric(ecal, energy, ecal * np.float32(1.1), energy)
    assert result["profile_error"] == pytest.approx(0.1, rel=1e-5)
    assert result["moment_error"] == pytest.approx(0.0, abs=1e-6)
    assert result["total"] == pytest.approx(0.1, rel=1e-4)


def test_shifted_candidate_raises_moment_error(sample):
    ecal, energy = sample
    base = metrics.accuracy_metric(ecal, energy, ecal[::-1].copy(), energy[::-1].copy())
    shifted = metrics.accuracy_metric(ecal, energy, np.roll(ecal, 2, axis=1), energy)
    assert base["total"] == pytest.approx(0.0, abs=1e-6)  # same events, reordered
    assert shifted["moment_error"] > 0.05
    assert shifted["total"] > base["total"]


def test_different_statistics_give_small_positive_error(sample):
    ecal, energy = sample
    other = synthetic_showers(energy, shape=ecal.shape[1:], seed=1)
    result = metrics.accuracy_metric(ecal, energy, other, energy)
    assert 0 < result["total"] < 0.1


def test_only_common_bins_are_used(sample):
    ecal, energy = sample
    keep = energy < 150
    result = metrics.accuracy_metric(ecal, energy, ecal[keep], energy[keep])
    assert result["bins_used"] == 2 and result["total"] == 0.0


def test_no_common_bin_raises(sample):
    ecal, energy = sample
    low, high = energy < 50, energy > 200
    with pytest.raises(ValueError, match="no energy bin"):
        metrics.accuracy_metric(ecal[low], energy[low], ecal[high], energy[high])
    with pytest.raises(ValueError, match="no energy bin"):
        metrics.accuracy_metric(ecal, energy + 1000.0, ecal, energy + 1000.0)


def test_mismatched_grids_raise(sample):
    ecal, energy = sample
    with pytest.raises(ValueError, match="cell grids differ"):
        metrics.accuracy_metric(ecal, energy, ecal[:, :-1], energy)


def test_dead_candidate_scores_worst(sample):
    ecal, energy = sample
    result = metrics.accuracy_metric(ecal, energy, np.zeros_like(ecal), energy)
    assert result["moment_error"] == math.inf
    assert result["profile_error"] == pytest.approx(1.0)
    assert metrics.higher_is_better(result["total"]) == 0.0


@SETTINGS
@given(hnp.arrays(np.float32, (2, 3, 3, 4), elements=st.floats(0.125, 10, width=32)),
       st.floats(0.5, 2.0))
def test_scaling_never_changes_moment_error(ecal, scale):
    energy = np.array([20.0, 120.0])
    scaled = (ecal.astype(np.float64) * scale)
    result = metrics.accuracy_metric(ecal, energy, scaled, energy)
    assert result["moment_error"] == pytest.approx(0.0, abs=1e-9)
    assert result["profile_error"] == pytest.approx(abs(scale - 1), rel=1e-6, abs=1e-9)


@SETTINGS
@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_higher_is_better_is_decreasing(a, b):
    lo, hi = sorted((a, b))
    assert 0 < metrics.higher_is_better(hi) <= metrics.higher_is_better(lo) <= 1


@pytest.mark.parametrize("bad", [-0.1, math.nan])
def test_higher_is_better_rejects_invalid(bad):
    with pytest.raises(ValueError):
        metrics.higher_is_better(bad)


def test_module_imports_only_numpy_and_gan():
    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy", "gan"}
