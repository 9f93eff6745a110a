"""quant.speed: interleaved pairs, per-pair ratios, bootstrap interval (logic only: no real timing)."""

import numpy as np
import pytest

from quant import speed


def test_bootstrap_is_deterministic_for_a_seed():
    values = np.random.default_rng(1).lognormal(0.5, 0.3, 24)
    assert speed.bootstrap_interval(values, seed=3) == speed.bootstrap_interval(values, seed=3)
    assert speed.bootstrap_interval(values, seed=3) != speed.bootstrap_interval(values, seed=4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interval_contains_the_median(seed):
    reference_s = np.random.default_rng(seed).uniform(0.8, 1.2, 15)
    variant_s = reference_s / np.random.default_rng(seed + 10).uniform(1.5, 3.0, 15)
    s = speed.speedup_from_times(reference_s, variant_s, seed=seed)
    assert s.low <= s.median <= s.high
    assert s.median == pytest.approx(np.median(reference_s / variant_s))
    assert s.pairs == 15


def test_constant_ratio_has_a_zero_width_interval():
    s = speed.speedup_from_times([0.3] * 6, [0.1] * 6)
    assert s.low == pytest.approx(3.0) and s.median == pytest.approx(3.0) and s.high == pytest.approx(3.0)
    assert s.reference_s == pytest.approx(0.3) and s.variant_s == pytest.approx(0.1)


def test_ratio_is_within_pairs_not_of_medians():
    # the load doubles in the second half: ratios stay 2, but the medians of the two columns would not pair up
    reference_s = [0.2, 0.2, 0.2, 0.8, 0.8, 0.8]
    variant_s = [0.1, 0.1, 0.1, 0.4, 0.4, 0.4]
    assert speed.speedup_from_times(reference_s, variant_s).median == pytest.approx(2.0)


def _fake_clock(monkeypatch, seconds: dict):
    """Calls return their name; seconds looks up a fixed duration per name and records the call order."""
    order = []

    def fake_seconds(call):
        name = call()
        order.append(name)
        return seconds[name]
    monkeypatch.setattr(speed, "seconds", fake_seconds)
    return order


def test_faster_variant_gives_a_ratio_above_one(monkeypatch):
    _fake_clock(monkeypatch, {"ref": 0.4, "var": 0.1})
    s = speed.paired_speedup(lambda: "ref", lambda: "var", pairs=4, warmup=0)
    assert s.median == pytest.approx(4.0) and s.median > 1
    _fake_clock(monkeypatch, {"ref": 0.1, "var": 0.4})
    assert speed.paired_speedup(lambda: "ref", lambda: "var", pairs=4, warmup=0).median == pytest.approx(0.25)


def test_pairs_interleave_and_alternate_which_goes_first(monkeypatch):
    order = _fake_clock(monkeypatch, {"ref": 0.2, "var": 0.1})
    warmups = []
    ref_s, var_s = speed.paired_times(lambda: warmups.append("r") or "ref", lambda: warmups.append("v") or "var",
                                      pairs=4, warmup=2)
    assert order == ["ref", "var", "var", "ref", "ref", "var", "var", "ref"]
    assert len(ref_s) == len(var_s) == 4
    assert warmups[:4] == ["r", "v", "r", "v"]  # the warm-up calls, untimed, come first


def test_warmed_speedup_warms_up_once_and_sizes_the_run_from_one_timed_pair(monkeypatch):
    order = _fake_clock(monkeypatch, {"ref": 0.3, "var": 0.1})
    calls = []
    sized = []
    s = speed.warmed_speedup(lambda: calls.append("r") or "ref", lambda: calls.append("v") or "var",
                             pairs=lambda pair_s: sized.append(pair_s) or 3)
    assert calls[:2] == ["r", "v"] and order[:2] == ["ref", "var"]  # untimed warm-up, then the sizing pair
    assert sized == [pytest.approx(0.4)] and s.pairs == 3 and s.median == pytest.approx(3.0)
    assert len(order) == 2 + 2 * 3


@pytest.mark.parametrize(("reference_s", "variant_s", "match"), [
    ([1.0, 1.0], [1.0], "equally many"),
    ([], [], "equally many"),
    ([[1.0]], [[1.0]], "equally many"),
    ([1.0, 0.0], [1.0, 1.0], "> 0"),
    ([1.0, -1.0], [1.0, 1.0], "> 0"),
    ([1.0, np.nan], [1.0, 1.0], "NaN"),
    ([1.0, 1.0], [np.inf, 1.0], "NaN"),
])
def test_bad_times_are_refused(reference_s, variant_s, match):
    with pytest.raises(ValueError, match=match):
        speed.speedup_from_times(reference_s, variant_s)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(values=[]), "non-empty"),
    (dict(values=[1.0, np.nan]), "NaN"),
    (dict(values=[1.0], resamples=0), "resamples"),
    (dict(values=[1.0], confidence=1.0), "confidence"),
])
def test_bad_bootstrap_input_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        speed.bootstrap_interval(**kwargs)


def test_bad_pair_counts_are_refused():
    with pytest.raises(ValueError, match="pairs"):
        speed.paired_times(lambda: None, lambda: None, pairs=0)
    with pytest.raises(ValueError, match="warmup"):
        speed.paired_times(lambda: None, lambda: None, pairs=1, warmup=-1)


def test_showers_per_second_and_format():
    assert speed.showers_per_second(0.5, 128) == pytest.approx(256.0)
    with pytest.raises(ValueError, match="> 0"):
        speed.showers_per_second(0.0, 128)
    s = speed.Speedup(2.345, 2.0, 2.5, 10, 1.0, 0.43)
    assert s.format() == "2.35x [2.00, 2.50]"
    assert s.to_dict()["pairs"] == 10
