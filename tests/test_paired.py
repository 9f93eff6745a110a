"""Tests for gan.paired (variant vs its FP32 model, event by event)."""

import numpy as np
import pytest
from synthetic import synthetic_showers

from gan import paired

ENERGY = np.repeat([30.0, 120.0, 220.0], 6)


@pytest.fixture(scope="module")
def fp32():
    return synthetic_showers(ENERGY, shape=(15, 15, 20))


def by_observable(rows, e_low):
    return {r["observable"]: r for r in rows if r["e_low"] == e_low}


def test_rows_cover_populated_bins_and_every_observable(fp32):
    rows = paired.paired_shifts(fp32, fp32.copy(), ENERGY)
    assert len(rows) == 3 * len(paired.PAIRED_OBSERVABLES)
    assert [r["observable"] for r in rows[:len(paired.PAIRED_OBSERVABLES)]] == list(
        paired.PAIRED_OBSERVABLES)
    assert sorted({(r["e_low"], r["e_high"]) for r in rows}) == [
        (10.0, 50.0), (100.0, 150.0), (200.0, 250.0)]
    assert set(rows[0]) == {"observable", "e_low", "e_high", "fp32", "variant", "shift", "index"}


def test_identical_inputs_shift_nothing(fp32):
    for r in paired.paired_shifts(fp32, fp32.copy(), ENERGY):
        assert r["shift"] == 0.0, r
        assert r["fp32"] == r["variant"], r


def test_scaled_variant_shifts_energies_by_five_percent_and_nothing_else(fp32):
    rows = paired.paired_shifts(fp32, fp32 * np.float32(1.05), ENERGY)
    for e_low in (10.0, 100.0, 200.0):
        r = by_observable(rows, e_low)
        for name in ("total_energy_mean", "longitudinal_profile", "transverse_profile_x", "transverse_profile_y"):
            assert r[name]["shift"] == pytest.approx(0.05, abs=1e-6), name
        for name in ("energy_resolution", "centroid_x", "centroid_y", "centroid_z",
                     "second_moment_x", "second_moment_y", "second_moment_z"):
            assert r[name]["shift"] == pytest.approx(0.0, abs=1e-6), name
        assert 0.0 <= r["cell_energy_spectrum"]["shift"] < 0.1  # cells cross the thresholds upwards
        assert r["hits_mean"]["shift"] >= 0.0
    r = by_observable(rows, 100.0)["total_energy_mean"]
    assert r["variant"] == pytest.approx(1.05 * r["fp32"], rel=1e-6)


def test_moved_variant_shifts_the_centroid_by_one_cell(fp32):
    fp32 = fp32.copy()
    fp32[:, -1] = 0.0  # so that no energy leaves the grid
    moved = np.zeros_like(fp32)
    moved[:, 1:] = fp32[:, :-1]  # one cell towards +x
    r = by_observable(paired.paired_shifts(fp32, moved, ENERGY), 100.0)
    assert r["centroid_x"]["shift"] == pytest.approx(1.0, abs=1e-6)
    assert r["centroid_y"]["shift"] == pytest.approx(0.0, abs=1e-9)
    assert r["total_energy_mean"]["shift"] == pytest.approx(0.0, abs=1e-6)
    assert r["second_moment_x"]["shift"] == pytest.approx(0.0, abs=1e-5)
    assert r["transverse_profile_x"]["shift"] > 0.1


def test_profile_shift_reports_the_worst_slice_above_one_percent():
    fp32 = np.zeros((2, 1, 1, 4))
    fp32[:, 0, 0] = [10.0, 5.0, 1.0, 0.05]  # last layer: < 1% of the energy
    variant = fp32.copy()
    variant[:, 0, 0, 2] = 0.5  # layer 2: -50%
    variant[:, 0, 0, 3] = 5.0  # ignored
    r = by_observable(paired.paired_shifts(fp32, variant, [100.0, 100.0]), 100.0)
    prof = r["longitudinal_profile"]
    assert (prof["fp32"], prof["variant"], prof["shift"], prof["index"]) == (1.0, 0.5, -0.5, 2)


def test_single_event_and_empty_events_give_finite_shifts():
    fp32 = np.zeros((2, 3, 3, 3), np.float32)
    fp32[1, 1, 1, 1] = 1.0
    rows = paired.paired_shifts(fp32, fp32 * 2, [20.0, 120.0])
    empty, single = by_observable(rows, 10.0), by_observable(rows, 100.0)
    assert empty["total_energy_mean"]["shift"] == 0.0  # 0 / 0
    assert np.isnan(empty["centroid_x"]["shift"])  # no energy, no centroid
    assert empty["cell_energy_spectrum"]["shift"] == 0.0
    assert single["total_energy_mean"]["shift"] == pytest.approx(1.0)
    assert single["energy_resolution"]["shift"] == 0.0  # one event: spread 0 in both
    assert single["second_moment_x"]["shift"] == 0.0  # point-like: 0 in both


def test_relative_shift_conventions():
    assert paired._relative_shift(2.0, 3.0) == 0.5
    assert paired._relative_shift(-2.0, -3.0) == -0.5  # variant minus fp32
    assert paired._relative_shift(0.0, 0.0) == 0.0
    assert paired._relative_shift(0.0, -1.0) == -np.inf


def test_zeroing_small_cells_moves_the_spectrum_and_the_hits():
    energy = np.full(8, 100.0)
    fp32 = synthetic_showers(energy, shape=(9, 9, 12), seed=4)
    zeroed = np.where(fp32 < 1e-3, np.float32(0), fp32)
    r = by_observable(paired.paired_shifts(fp32, zeroed, energy), 100.0)
    assert r["hits_mean"]["shift"] < 0
    assert r["cell_energy_spectrum"]["index"] == 0 and r["cell_energy_spectrum"]["shift"] < 0  # > 0.3 MeV
    assert paired.row_name(r["cell_energy_spectrum"]) == "cell_energy_spectrum[>0.3 MeV]"


def test_bootstrap_interval_holds_the_shift_and_is_exact_for_a_pure_scale(fp32):
    comps = paired.paired_components(fp32, fp32 * np.float32(1.02), ENERGY, resamples=50, seed=1)
    for _, _, entry in comps:
        total = entry["total_energy_mean"]
        assert total["low"][0] == pytest.approx(0.02, abs=1e-6) and total["high"][0] == pytest.approx(0.02, abs=1e-6)
    rng = np.random.default_rng(2)
    noisy = fp32 * rng.normal(1.0, 0.05, size=(len(fp32), 1, 1, 1)).astype(np.float32)
    for _, _, entry in paired.paired_components(fp32, noisy, ENERGY, resamples=200, seed=1):
        total = entry["total_energy_mean"]
        assert total["low"][0] < total["high"][0]
        assert total["low"][0] <= total["shift"][0] <= total["high"][0]


def test_the_same_seed_gives_the_same_interval(fp32):
    noisy = fp32 * np.float32(1.01)
    noisy[::2] *= np.float32(0.97)
    a = paired.paired_components(fp32, noisy, ENERGY, resamples=40, seed=3)
    b = paired.paired_components(fp32, noisy, ENERGY, resamples=40, seed=3)
    assert a[0][2]["total_energy_mean"]["low"] == b[0][2]["total_energy_mean"]["low"]


def test_mismatched_samples_are_rejected(fp32):
    with pytest.raises(ValueError, match="differ in shape"):
        paired.paired_shifts(fp32, fp32[:-1], ENERGY)


def test_shift_table_prints_values_tolerances_and_verdicts(fp32):
    rows = paired.paired_shifts(fp32, fp32 * np.float32(1.05), ENERGY)
    plain = paired.format_shift_table(rows)
    assert "tolerance" not in plain and "+5.00%" in plain and "100-150" in plain
    lines = plain.splitlines()
    assert len(lines) == 2 + len(rows) and lines[0].split()[:2] == ["observable", "E_p"]
    table = paired.format_shift_table(rows, {"total_energy_mean": 0.01, "centroid_x": 0.1})
    energy_line = next(line for line in table.splitlines() if "total_energy_mean" in line)
    assert energy_line.split()[-2:] == ["1.00%", "FAIL"]
    centroid_line = next(line for line in table.splitlines() if "centroid_x" in line)
    assert centroid_line.split()[-2:] == ["0.1", "ok"]
    hits_line = next(line for line in table.splitlines() if "hits_mean" in line)
    assert hits_line.split()[-2:] == ["-", "-"]
    assert "longitudinal_profile[z=" in table
