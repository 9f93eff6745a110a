"""Tests for gan.physics: property tests (hypothesis) plus exact cases."""

import ast
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import synthetic_showers

from gan import physics

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def showers(draw, max_events=3, max_side=5):
    """Small float32 (N, X, Y, Z) batches, every event with energy > 0 GeV."""
    n = draw(st.integers(1, max_events))
    dims = draw(st.tuples(*[st.integers(1, max_side)] * 3))
    ecal = draw(hnp.arrays(np.float32, (n, *dims),
                           elements=st.floats(0, 100, width=32)))
    hot = [draw(st.integers(0, d - 1)) for d in dims]
    ecal[(slice(None), *hot)] += 1.0
    return ecal


# ---------------------------------------------------------------- properties


@SETTINGS
@given(showers())
def test_profiles_sum_to_total_energy(ecal):
    total = physics.total_energy(ecal)
    for profile in (physics.longitudinal_profile(ecal),
                    physics.transverse_profile_x(ecal),
                    physics.transverse_profile_y(ecal)):
        assert profile.shape[0] == len(ecal)
        np.testing.assert_allclose(profile.sum(axis=1), total, rtol=1e-12)


def test_profile_shapes_follow_axes():
    ecal = np.ones((2, 3, 4, 5), np.float32)
    assert physics.transverse_profile_x(ecal).shape == (2, 3)
    assert physics.transverse_profile_y(ecal).shape == (2, 4)
    assert physics.longitudinal_profile(ecal).shape == (2, 5)
    assert physics.moments(ecal, order=3).shape == (2, 3, 3)


@SETTINGS
@given(showers(), st.floats(0.01, 100), st.floats(1, 500))
def test_sampling_fraction_scales_linearly(ecal, scale, e_p):
    energy = np.full(len(ecal), e_p)
    base = physics.sampling_fraction(ecal, energy)
    scaled = physics.sampling_fraction(ecal.astype(np.float64) * scale, energy)
    np.testing.assert_allclose(scaled, scale * base, rtol=1e-12)


@SETTINGS
@given(showers(max_side=4), st.tuples(*[st.integers(0, 3)] * 3))
def test_translation_shifts_centroid_and_keeps_central_moments(core, shift):
    pad = 3
    n, a, b, c = core.shape
    grid = np.zeros((n, a + pad, b + pad, c + pad), np.float32)
    grid[:, :a, :b, :c] = core
    moved = np.roll(grid, shift, axis=(1, 2, 3))
    m0, m1 = physics.moments(grid, order=2), physics.moments(moved, order=2)
    np.testing.assert_allclose(m1[:, :, 0] - m0[:, :, 0],
                               np.broadcast_to(shift, (n, 3)), atol=1e-9)
    np.testing.assert_allclose(m1[:, :, 1], m0[:, :, 1], rtol=1e-9, atol=1e-9)


@SETTINGS
@given(showers())
def test_mirror_symmetric_shower_is_centred(ecal):
    symmetric = ecal + ecal[:, ::-1]
    centroid_x = physics.moments(symmetric, order=1)[:, 0, 0]
    np.testing.assert_allclose(centroid_x, (ecal.shape[1] - 1) / 2, atol=1e-9)


@SETTINGS
@given(showers(), st.floats(0.01, 100))
def test_moments_invariant_under_energy_scaling(ecal, scale):
    ecal = ecal.astype(np.float64)
    np.testing.assert_allclose(physics.moments(ecal * scale, order=3),
                               physics.moments(ecal, order=3), rtol=1e-9, atol=1e-9)


@SETTINGS
@given(showers(), st.floats(0, 50), st.floats(0, 50))
def test_hits_monotone_in_threshold(ecal, t1, t2):
    low, high = sorted((t1, t2))
    assert np.all(physics.hits_above(ecal, low) >= physics.hits_above(ecal, high))
    assert np.all(physics.hits_above(ecal, 0.0) <= np.prod(ecal.shape[1:]))


@SETTINGS
@given(st.tuples(*[st.integers(1, 6)] * 3).flatmap(
    lambda dims: st.tuples(st.just(dims), st.tuples(*[st.integers(0, d - 1) for d in dims]))))
def test_position_of_maximum_single_hot_cell(dims_and_cell):
    dims, cell = dims_and_cell
    ecal = np.zeros((2, *dims), np.float32)
    ecal[(0, *cell)] = 5.0
    ecal[(1, *cell)] = 0.1
    pos = physics.position_of_maximum(ecal)
    assert pos.shape == (2, 3)
    np.testing.assert_array_equal(pos, [cell, cell])


# ---------------------------------------------------------------- exact cases


def test_moments_exact_two_cells():
    ecal = np.zeros((1, 3, 1, 4), np.float32)
    ecal[0, 0, 0, 1] = 1.0  # x=0, z=1
    ecal[0, 2, 0, 3] = 3.0  # x=2, z=3
    m = physics.moments(ecal, order=3)[0]
    # x: mean 1.5, m2 = (1*2.25 + 3*0.25)/4 = 0.75, m3 = (-3.375 + 3*0.125)/4 = -0.75
    np.testing.assert_allclose(m[0], [1.5, 0.75, -0.75])
    np.testing.assert_allclose(m[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(m[2], [2.5, 0.75, -0.75])


def test_zero_energy_event_gives_nan_moments_without_warnings():
    ecal = np.zeros((2, 4, 4, 4), np.float32)
    ecal[1, 1, 2, 3] = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = physics.moments(ecal, order=2)
        physics_rows = physics.physics_summary(ecal, np.array([20.0, 20.0]))
    assert np.all(np.isnan(m[0]))
    np.testing.assert_allclose(m[1], [[1, 0], [2, 0], [3, 0]])
    assert physics_rows[0]["count"] == 2
    assert physics_rows[0]["z_centroid_mean"] == pytest.approx(3.0)


def test_hits_default_threshold():
    ecal = np.zeros((1, 2, 2, 2), np.float32)
    ecal[0, 0, 0, 0] = 2 * physics.HIT_THRESHOLD_GEV
    ecal[0, 1, 0, 0] = 0.5 * physics.HIT_THRESHOLD_GEV
    np.testing.assert_array_equal(physics.hits_above(ecal), [1])


def test_cell_energy_spectrum_counts_positive_cells():
    ecal = np.zeros((2, 3, 3, 3), np.float32)
    ecal[0, 0, 0, 0] = 1e-3
    ecal[1, 2, 2, 2] = 10.0
    ecal[1, 1, 1, 1] = -1.0  # non-physical negative cell: ignored
    counts, edges = physics.cell_energy_spectrum(ecal)
    np.testing.assert_array_equal(edges, physics.CELL_SPECTRUM_BINS_GEV)
    assert len(counts) == 50 and counts.sum() == 2
    counts, _ = physics.cell_energy_spectrum(ecal, bins=[1e-4, 1e-2, 1e2])
    np.testing.assert_array_equal(counts, [1, 1])


def test_gamma_shower_max_recovers_a_gamma_profiles_maximum_and_its_shift():
    t = np.arange(25) + 0.5
    a, b = 4.0, 0.5  # t_max = (a - 1) / b = 6, i.e. layer 5.5
    gamma = t ** (a - 1) * np.exp(-b * t)
    deeper = (t - 3) ** (a - 1) * np.exp(-b * (t - 3)) * (t > 3)
    np.testing.assert_allclose(physics.gamma_shower_max(np.stack([gamma, 7 * gamma])), [5.5, 5.5], atol=1e-9)
    assert 2.5 < physics.gamma_shower_max(deeper[None])[0] - 5.5 < 3.5
    spike, flat = np.zeros(25), np.zeros(25)
    spike[4] = 1.0
    assert np.isnan(physics.gamma_shower_max(np.stack([spike, flat]))).all()
    with pytest.raises(ValueError, match="profiles must be"):
        physics.gamma_shower_max(gamma)


def test_energy_bin_index_edges():
    edges = physics.DEFAULT_ENERGY_EDGES_GEV
    assert edges[0] == 10 and edges[-1] == 250
    e = np.array([5.0, 10.0, 49.9, 50.0, 249.0, 250.0, 251.0, np.nan])
    np.testing.assert_array_equal(physics.energy_bin_index(e, edges),
                                  [-1, 0, 0, 1, 4, 4, -1, -1])


def test_binned_mean_std_empty_bin_and_nan_events():
    edges = [0.0, 10.0, 20.0, 30.0]
    energy = np.array([1.0, 2.0, 3.0, 25.0, 26.0, 99.0])
    values = np.array([1.0, 3.0, np.nan, np.nan, np.nan, 7.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std, count = physics.binned_mean_std(values, energy, edges)
    np.testing.assert_array_equal(count, [3, 0, 2])
    np.testing.assert_allclose(mean[0], 2.0)
    np.testing.assert_allclose(std[0], 1.0)
    assert np.isnan(mean[1]) and np.isnan(std[1])  # empty bin
    assert np.isnan(mean[2]) and np.isnan(std[2])  # only NaN events


def test_binned_mean_std_multidimensional_values():
    values = np.arange(12, dtype=float).reshape(3, 2, 2)
    mean, std, count = physics.binned_mean_std(values, [15.0, 15.0, 60.0])
    assert mean.shape == std.shape == (5, 2, 2)
    np.testing.assert_array_equal(count, [2, 1, 0, 0, 0])
    np.testing.assert_allclose(mean[0], [[2, 3], [4, 5]])
    np.testing.assert_allclose(std[0], np.full((2, 2), 2.0))
    np.testing.assert_allclose(mean[1], values[2])
    assert np.all(np.isnan(mean[2:]))


def test_shower_observables_keys_and_shapes():
    ecal = synthetic_showers(np.array([20.0, 120.0]), shape=(5, 6, 7))
    obs = physics.shower_observables(ecal, np.array([20.0, 120.0]))
    assert tuple(obs) == physics.OBSERVABLE_NAMES
    shapes = {"total_energy": (2,), "sampling_fraction": (2,),
              "longitudinal_profile": (2, 7), "transverse_profile_x": (2, 5),
              "transverse_profile_y": (2, 6), "moments": (2, 3, 2), "hits": (2,),
              "position_of_maximum": (2, 3)}
    assert {k: v.shape for k, v in obs.items()} == shapes


def test_physics_summary_on_synthetic_showers():
    energy = np.repeat([30.0, 75.0, 230.0], 20)
    ecal = synthetic_showers(energy)
    rows = physics.physics_summary(ecal, energy)
    assert len(rows) == 5
    assert [r["count"] for r in rows] == [20, 20, 0, 0, 20]
    for r in (rows[0], rows[1], rows[4]):
        assert r["sf_mean"] == pytest.approx(0.02, rel=0.01)
        assert r["e_cal_mean"] == pytest.approx(0.02 * (r["e_low"] + r["e_high"]) / 2, rel=0.3)
        assert r["shower_max_layer"] in (4, 5, 6)  # gz peaks at z + 0.5 = 6
        assert r["x_width_mean"] == pytest.approx(2.0, rel=0.05)
        assert r["y_width_mean"] == pytest.approx(2.0, rel=0.05)
    assert rows[2]["shower_max_layer"] == -1 and np.isnan(rows[2]["sf_mean"])
    text = physics.format_summary(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert "E_p [GeV]" in lines[0] and "<E_cal> [GeV]" in lines[0]
    assert len({len(line) for line in lines}) == 1  # aligned
    assert lines[4].split()[1] == "0" and "-" in lines[4].split()[2:]


def test_format_comparison_puts_candidate_before_reference():
    energy = np.repeat([30.0, 75.0], 10)
    ref = physics.physics_summary(synthetic_showers(energy), energy)
    cand = physics.physics_summary(1.1 * synthetic_showers(energy), energy)
    lines = physics.format_comparison(cand, ref).splitlines()
    assert len({len(line) for line in lines}) == 1
    cells = lines[2].split("  ")
    assert "10 / 10" in lines[2] and f"{1.1 * ref[0]['sf_mean']:.4f} / {ref[0]['sf_mean']:.4f}" in cells


@pytest.mark.parametrize(("call", "message"), [
    (lambda: physics.total_energy(np.zeros((4, 4, 4))), "4 dimensions"),
    (lambda: physics.sampling_fraction(np.zeros((2, 3, 3, 3)), np.ones(3)), "3 entries but there are 2 events"),
    (lambda: physics.sampling_fraction(np.zeros((2, 3, 3, 3)), np.ones((2, 1))), "must be 1-D"),
    (lambda: physics.sampling_fraction(np.zeros((2, 3, 3, 3)), np.array([1.0, 0.0])), "must be > 0 GeV"),
    (lambda: physics.moments(np.zeros((1, 2, 2, 2)), order=0), "order must be an integer >= 1"),
    (lambda: physics.energy_bin_index(np.ones(2), [10.0]), "at least 2 values"),
    (lambda: physics.energy_bin_index(np.ones(2), [10.0, 5.0]), "strictly increasing"),
])
def test_invalid_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_default_constants_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        physics.DEFAULT_ENERGY_EDGES_GEV[0] = 0.0


def test_module_imports_only_numpy():
    tree = ast.parse(Path(physics.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy"}
