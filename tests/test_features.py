"""Tests for gan.features (high-level feature vector per shower)."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import synthetic_showers

from gan import features, physics

SETTINGS = settings(max_examples=50, deadline=None)


def column(names, values, name):
    return values[:, names.index(name)]


# ------------------------------------------------------------------ names


def test_names_match_groups_and_3dgan_grid():
    names = features.feature_names()
    assert len(names) == 5 * 25 + 4 == len(set(names))
    assert names[:2] == ["sampling_fraction", "layer_energy_00"]
    assert names[-3:] == ["hits", "longitudinal_centroid", "longitudinal_width"]
    flat = [n for group in features.FEATURE_GROUPS.values() for n in group]
    assert flat == names
    assert features.FEATURE_GROUPS["layer_centroid_x"][7] == "layer_centroid_x_07"
    assert set(features.FEATURE_GROUPS) == {
        "sampling_fraction", "layer_energy", "layer_centroid_x", "layer_centroid_y",
        "layer_width_x", "layer_width_y", "hits", "longitudinal_centroid",
        "longitudinal_width"}


def test_normal_showers_give_finite_features_consistent_with_physics():
    energy = np.array([20.0, 100.0, 240.0])
    ecal = synthetic_showers(energy)
    names, values = features.high_level_features(ecal, energy)
    assert names == features.feature_names(25)
    assert values.shape == (3, 129) and values.dtype == np.float64
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(column(names, values, "sampling_fraction"),
                               physics.sampling_fraction(ecal, energy), rtol=1e-10)
    layer_e = values[:, [names.index(n) for n in features.FEATURE_GROUPS["layer_energy"]]]
    np.testing.assert_allclose(layer_e, physics.longitudinal_profile(ecal), rtol=1e-10)
    assert np.array_equal(column(names, values, "hits"), physics.hits_above(ecal))
    mom = physics.moments(ecal, 2)
    np.testing.assert_allclose(column(names, values, "longitudinal_centroid"), mom[:, 2, 0])
    np.testing.assert_allclose(column(names, values, "longitudinal_width") ** 2, mom[:, 2, 1])
    # blobs are centred at cell 12 with width 2 cells in every layer (noise aside)
    np.testing.assert_allclose(column(names, values, "layer_centroid_x_05"), 12.0, atol=0.3)
    np.testing.assert_allclose(column(names, values, "layer_width_y_05"), 2.0, atol=0.3)


# -------------------------------------------------------------- exact cases


def test_point_and_two_cell_deposits_give_exact_centroids_and_widths():
    ecal = np.zeros((1, 5, 6, 3))
    ecal[0, 1, 4, 0] = 2.0  # layer 0: one cell at x=1, y=4
    ecal[0, 0, 2, 2] = 1.0  # layer 2: two cells at x=0 and x=4, y=2
    ecal[0, 4, 2, 2] = 1.0
    names, v = features.high_level_features(ecal, [100.0])
    get = lambda name: column(names, v, name)[0]  # noqa: E731
    assert (get("layer_centroid_x_00"), get("layer_centroid_y_00")) == (1.0, 4.0)
    assert (get("layer_width_x_00"), get("layer_width_y_00")) == (0.0, 0.0)
    assert (get("layer_centroid_x_02"), get("layer_width_x_02")) == (2.0, 2.0)
    assert get("layer_width_y_02") == 0.0
    assert get("sampling_fraction") == pytest.approx(0.04)
    assert get("hits") == 3
    assert get("longitudinal_centroid") == pytest.approx(1.0)
    assert get("longitudinal_width") == pytest.approx(1.0)
    # empty layer 1 falls back to the shower's overall centroid, width 0
    assert get("layer_centroid_x_01") == pytest.approx((2 * 1 + 0 + 4) / 4)
    assert get("layer_centroid_y_01") == pytest.approx((2 * 4 + 2 + 2) / 4)
    assert get("layer_width_x_01") == get("layer_width_y_01") == 0.0


def test_empty_shower_gives_grid_centre_and_zero_widths_without_warnings():
    ecal = np.zeros((2, 5, 7, 4), np.float32)
    ecal[1, 2, 3, 1] = 1.0
    names, v = features.high_level_features(ecal, [50.0, 50.0])
    assert np.all(np.isfinite(v))
    empty = dict(zip(names, v[0], strict=True))
    assert empty["sampling_fraction"] == 0.0 and empty["hits"] == 0.0
    assert empty["layer_centroid_x_03"] == 2.0 and empty["layer_centroid_y_03"] == 3.0
    assert empty["longitudinal_centroid"] == 1.5
    assert all(empty[n] == 0.0 for n in names if "width" in n or "energy" in n)


def test_bad_primary_energy_is_rejected():
    ecal = np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match="> 0 GeV"):
        features.high_level_features(ecal, [10.0, 0.0])
    with pytest.raises(ValueError, match="2 events"):
        features.high_level_features(ecal, [10.0])


# --------------------------------------------------------------- properties


@SETTINGS
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 4),
                                        st.integers(1, 4), st.integers(1, 4)),
                  elements=st.floats(0, 10, width=32)))
def test_features_are_finite_and_within_the_grid(ecal):
    names, v = features.high_level_features(ecal, np.full(len(ecal), 10.0))
    assert v.shape == (len(ecal), len(names)) and np.all(np.isfinite(v))
    n_x, n_y, n_z = ecal.shape[1:]
    for prefix, n in (("layer_centroid_x", n_x), ("layer_centroid_y", n_y),
                      ("layer_width_x", n_x), ("layer_width_y", n_y),
                      ("longitudinal_centroid", n_z), ("longitudinal_width", n_z)):
        cols = v[:, [i for i, name in enumerate(names) if name.startswith(prefix)]]
        assert np.all((cols >= 0) & (cols <= n - 1 + 1e-9)), prefix
