"""quant.auto_mixed: the selection logic on synthetic sweep results, and the variant built for real from a
generator with a deliberately fragile conv3d_3."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from quant import auto_mixed
from quant.auto_mixed import choose_assignment, estimated_speedup

LAYERS = ("dense_1", "conv3d_1", "conv3d_2", "conv3d_3", "conv3d_4")
MACS = {"dense_1": 6.3e5, "conv3d_1": 5.8e7, "conv3d_2": 1.5e8, "conv3d_3": 4.6e7, "conv3d_4": 7.5e5}  # the 3DGAN
HAND_MIX = {"dense_1": "int8", "conv3d_1": "int8", "conv3d_2": "int8", "conv3d_3": "bf16", "conv3d_4": "bf16"}


@dataclass(frozen=True)
class Solo:
    worst_ratio: float
    worst: str = "total_energy_mean at 100-200 GeV"
    speedup: float = 1.2
    speedup_low: float = 1.1
    speedup_high: float = 1.3
    ratios: dict = field(default_factory=dict)  # observable -> solo ratio


@dataclass(frozen=True)
class Verdict:
    worst_ratio: float
    worst: str = "total_energy_mean"


def solo_results(int8=None, bf16=None):
    """CERN-like: int8 breaks conv3d_3 and conv3d_4, bf16 breaks conv3d_1 (the AMX kernel)."""
    int8 = {"dense_1": 0.2, "conv3d_1": 0.3, "conv3d_2": 0.3, "conv3d_3": 25.0, "conv3d_4": 5.0, **(int8 or {})}
    bf16 = {"dense_1": 0.05, "conv3d_1": 12.0, "conv3d_2": 0.1, "conv3d_3": 0.1, "conv3d_4": 0.1, **(bf16 or {})}
    return {"int8": {k: v if isinstance(v, Solo) else Solo(v) for k, v in int8.items()},
            "bf16": {k: v if isinstance(v, Solo) else Solo(v) for k, v in bf16.items()}}


def accept_all(assignment):
    return Verdict(0.5)


def test_cost_model():
    assert estimated_speedup({}, MACS) == 1.0
    assert estimated_speedup({layer: "int8" for layer in LAYERS}, MACS) == pytest.approx(4.0)
    assert estimated_speedup({layer: "bf16" for layer in LAYERS}, MACS) == pytest.approx(2.0)


def test_fragile_layers_are_excluded_and_the_fastest_safe_mix_is_chosen():
    choice = choose_assignment(solo_results(), MACS, accept_all)
    assert choice.assignment == HAND_MIX  # int8 where it is safe alone, bf16 where int8 is not
    assert choice.verified_ratio == 0.5 and len(choice.tries) == 1
    text = "\n".join(choice.explanation)
    assert "conv3d_3 int8: alone worst ratio 25" in text and "conv3d_4 int8" in text and "conv3d_1 bf16" in text
    assert "chosen: dense_1 int8" in text


def test_a_fragile_layer_never_gets_its_fragile_precision():
    choice = choose_assignment(solo_results(int8={"conv3d_2": 3.0}), MACS, accept_all)
    assert choice.assignment["conv3d_2"] == "bf16" and choice.assignment["conv3d_1"] == "int8"


def test_failed_verification_falls_back_to_the_next_fastest():
    def interaction(assignment):  # conv3d_1 and conv3d_2 int8 together break the physics
        both = assignment["conv3d_1"] == assignment["conv3d_2"] == "int8"
        return Verdict(1.8 if both else 0.7)

    # equal solo ratios: demote the one that costs less speed (conv3d_2 int8 -> bf16, not conv3d_1 int8 -> fp32)
    choice = choose_assignment(solo_results(int8={"conv3d_1": 0.3, "conv3d_2": 0.3}), MACS, interaction)
    assert len(choice.tries) == 2 and choice.tries[0]["worst_ratio"] == 1.8
    assert choice.assignment == {**HAND_MIX, "conv3d_2": "bf16"}
    assert choice.estimated_speedup < choice.tries[0]["estimated_speedup"]
    assert choice.verified_ratio == 0.7
    assert any(line.startswith("demote conv3d_2 int8 -> bf16") for line in choice.explanation)


def test_the_layer_that_moves_the_failing_observable_most_is_demoted():
    # conv3d_2 int8 has the largest worst ratio alone, but on another observable: conv3d_4 bf16 moves hits most
    solo = solo_results(int8={"conv3d_2": Solo(0.7, ratios={"total_energy_std": 0.7, "hits_mean": 0.3})},
                        bf16={"conv3d_4": Solo(0.42, ratios={"hits_mean": 0.42})})

    def hits(assignment):
        return Verdict(1.15, "hits_mean at 100-200 GeV: shift +0.059") if assignment == HAND_MIX else Verdict(0.8)

    choice = choose_assignment(solo, MACS, hits)
    assert choice.assignment == {**HAND_MIX, "conv3d_4": "fp32"}
    assert any(line.startswith("demote conv3d_4 bf16 -> fp32 (largest solo ratio on hits_mean")
               for line in choice.explanation)


def test_the_layer_with_the_largest_solo_ratio_is_demoted_first():
    def interaction(assignment):
        return Verdict(1.5 if assignment["conv3d_1"] == assignment["conv3d_2"] == "int8" else 0.7)

    choice = choose_assignment(solo_results(int8={"conv3d_1": 0.8, "conv3d_2": 0.3}), MACS, interaction)
    assert choice.assignment["conv3d_1"] == "fp32"  # int8 -> next allowed: bf16 is not (AMX), so fp32


def test_nothing_verified_means_all_fp32():
    choice = choose_assignment(solo_results(), MACS, lambda a: Verdict(2.0), max_tries=3)
    assert set(choice.assignment.values()) == {"fp32"} and len(choice.tries) == 3
    speeds = [t["estimated_speedup"] for t in choice.tries]
    assert speeds == sorted(speeds, reverse=True)
    assert choice.verified_ratio is None and "all fp32" in choice.explanation[-1]


def test_clearly_slower_layer_precision_can_be_excluded():
    slow = Solo(0.1, speedup=0.6, speedup_low=0.5, speedup_high=0.7)
    noisy = Solo(0.1, speedup=0.8, speedup_low=0.6, speedup_high=1.1)  # not clearly slower: kept
    solo = solo_results(int8={"conv3d_2": slow, "dense_1": noisy})
    choice = choose_assignment(solo, MACS, accept_all, slower_bound=0.9)
    assert choice.assignment["conv3d_2"] == "bf16" and choice.assignment["dense_1"] == "int8"
    assert "conv3d_2 int8: alone clearly slower" in "\n".join(choice.explanation)
    assert choose_assignment(solo, MACS, accept_all).assignment == HAND_MIX  # off by default: timings are noisy


def test_selection_is_deterministic_and_needs_no_verify_to_rank():
    a, b = choose_assignment(solo_results(), MACS), choose_assignment(solo_results(), MACS)
    assert a.assignment == b.assignment == HAND_MIX and a.explanation == b.explanation
    assert a.verified_ratio is None and "not verified" in a.explanation[-1]


def test_int8_only_space():
    choice = choose_assignment({"int8": solo_results()["int8"]}, MACS, accept_all)
    assert choice.assignment == {**{k: "int8" for k in ("dense_1", "conv3d_1", "conv3d_2")},
                                 "conv3d_3": "fp32", "conv3d_4": "fp32"}
    assert "x {int8, fp32} = 32 assignments" in choice.explanation[0]


# ------------------------------------------------------------------ the real variant


@pytest.mark.tf
def test_layer_macs_of_the_3dgan(seeded_generator):
    macs = auto_mixed.layer_macs(seeded_generator, LAYERS)
    assert macs["dense_1"] == 200 * 7 * 7 * 8 * 8
    assert macs["conv3d_1"] == 7 * 7 * 8 * 64 * (6 * 6 * 8) * 8  # SAME: output cells x kernel x input channels
    assert macs["conv3d_2"] == 13 * 14 * 9 * 6 * (6 * 5 * 8) * 64  # VALID on the padded (18, 18, 16) input
    assert macs["conv3d_4"] == 25 ** 3 * (2 * 2 * 2) * 6


@pytest.mark.tf
@pytest.mark.slow
def test_auto_mixed_keeps_the_fragile_layer_out_of_int8(seeded_generator, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from quant import registry
    from quant.calibration import make_calibration
    from quant.sensitivity import SweepSettings
    from tests.test_sensitivity import fragile_copy

    monkeypatch.setenv("CALOGAN_CACHE", str(tmp_path / "cache"))
    fragile = fragile_copy(seeded_generator)
    calibration = make_calibration(16, seed=0)
    settings = SweepSettings(showers=32, seed=1, bins=2, pairs=1, speed_batch=8)
    messages = []
    variant = auto_mixed.build(fragile, calibration, settings=settings, log=messages.append)
    choice = variant.choice
    assert choice.assignment["conv3d_3"] != "int8"
    assert any(line.startswith("excluded by the solo sweep:") and "conv3d_3 int8" in line
               for line in choice.explanation)
    assert choice.verified_ratio is None or choice.verified_ratio <= 1.0
    report = variant.op_report()
    assert report.variant == "auto-mixed" and any("auto-mixed assignment" in n for n in report.notes)

    z = np.random.default_rng(2).standard_normal((3, 200)).astype(np.float32)
    energy = np.array([30, 120, 230], np.float32)
    saved = variant.save(tmp_path / "variant")
    loaded = registry.load(saved)
    np.testing.assert_allclose(loaded.generate(z, energy), variant.generate(z, energy), rtol=1e-5, atol=1e-6)
    assert loaded.choice.assignment == choice.assignment

    again = auto_mixed.build(fragile, calibration, settings=settings, log=messages.append)
    assert again.choice.from_cache and again.choice.assignment == choice.assignment
    assert any("read from cache" in n for n in again.op_report().notes)
