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
    with pytest.raises(ValueError, match="must be a number >= 0"):
        metrics.higher_is_better(bad)


def test_module_imports_only_numpy_and_gan():
    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy", "gan"}


# ------------------------------------------------------------------ CERN's convention, against GANutils.metric


def _ganutils_metric(act, gan):
    """CERN 3DGAN GANutils.metric for one energy point (m = 2, ang = 0), written as in their code:
    returns [tot, metricp, metrice]; the moment block is repeated in their loop, so metricp counts it twice."""
    def sums(ecal):
        return ecal.sum(axis=(2, 3)), ecal.sum(axis=(1, 3)), ecal.sum(axis=(1, 2))

    def moments(ecal):
        out = []
        for s in sums(ecal):
            idx = np.arange(s.shape[1])
            mean = (s * idx).sum(axis=1) / s.sum(axis=1)
            second = (s * (idx[None, :] - mean[:, None]) ** 2).sum(axis=1) / s.sum(axis=1)
            out.append(np.stack([mean, second], axis=1))
        return out

    metricp = metrice = 0.0
    m_act, m_gan = moments(act), moments(gan)
    pos_error = sum(np.abs((a.mean(axis=0) - g.mean(axis=0)) / a.mean(axis=0))
                    for a, g in zip(m_act, m_gan, strict=True)) / 3
    for _ in range(2):  # the repeated block
        metricp += np.sum(pos_error) / 2
    errors = [np.sum(np.abs((a.mean(axis=0) - g.mean(axis=0)) / a.mean(axis=0))) / a.shape[1]
              for a, g in zip(sums(act), sums(gan), strict=True)]
    metrice += sum(errors) / 3
    return [metricp + metrice, metricp, metrice]


def test_cern_convention_reproduces_ganutils_metric():
    energy = np.full(30, 100.0)
    act = synthetic_showers(energy, shape=(12, 12, 10), seed=1).astype(np.float64) + 1e-6
    gan = synthetic_showers(energy, shape=(12, 12, 10), seed=2).astype(np.float64) * 1.1 + 1e-6
    tot, metricp, metrice = _ganutils_metric(act, gan)
    cern = metrics.accuracy_metric(act, energy, gan, energy, [50.0, 150.0], convention="cern")
    assert (cern["total"], cern["moment_error"], cern["profile_error"]) == pytest.approx((tot, metricp, metrice))
    ours = metrics.accuracy_metric(act, energy, gan, energy, [50.0, 150.0])
    assert ours["moment_error"] == pytest.approx(metricp / 2)  # ours counts the moment term once


def test_cern_profile_term_is_infinite_where_a_reference_slice_is_empty():
    energy = np.full(4, 100.0)
    act = synthetic_showers(energy, shape=(6, 6, 6), seed=3)
    act[:, 0] = 0.0
    gan = act.copy()
    gan[:, 0] = 1e-3
    assert math.isinf(metrics.accuracy_metric(act, energy, gan, energy, [50, 150], convention="cern")["total"])
    assert math.isfinite(metrics.accuracy_metric(act, energy, gan, energy, [50, 150])["total"])
