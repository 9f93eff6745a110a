"""The study runner's pieces without TensorFlow: built once, built for one use and released, speed per batch size,
typed results as the report's entries."""

import numpy as np
import pytest

from quant import speed
from quant.base import VariantUnavailable
from study import session as session_mod
from study.inputs import Inputs, uniform_inputs
from study.results import PhysicsResult, SpeedResult, VariantResult
from study.runner import measure_speed, pairs_within


class FakeVariant:
    def __init__(self, name):
        self.name = name

    def generate(self, z, energy):
        return self.name


@pytest.fixture
def builds(monkeypatch):
    """Every registry build recorded as (variant, model context); 'gone' is not available."""
    from quant import registry

    calls = []

    def build(name, generator, calibration, context=None):
        calls.append((name, context))
        if name == "gone":
            raise VariantUnavailable(name, "needs a CPU it does not have")
        return FakeVariant(name)
    monkeypatch.setattr(registry, "build", build)
    monkeypatch.setattr("gan.pretrained.load_generator", lambda model: f"generator of {model}")
    return calls


def test_a_kept_variant_is_built_once_and_with_its_model_context(builds):
    s = session_mod.Session(8, 0)
    assert s.variant("default", "bf16") is s.variant("default", "bf16")
    assert builds == [("bf16", "default")]  # the model's name: registry.build makes its BuildContext
    for _ in range(2):
        with pytest.raises(VariantUnavailable):
            s.variant("default", "gone")
    assert builds.count(("gone", "default")) == 1  # unavailable: remembered, not retried


def test_use_builds_for_one_use_and_releases_unless_kept(builds, monkeypatch):
    released = []
    monkeypatch.setattr(session_mod, "release_memory", lambda: released.append(1))
    s = session_mod.Session(8, 0)
    with s.use("default", "bf16") as built:
        assert built.variant.name == "bf16" and built.build_s >= 0
    with s.use("default", "bf16"):
        pass
    assert builds == [("bf16", "default")] * 2 and len(released) == 2  # not kept: built again, released each time
    kept = s.variant("default", "fp32")
    with s.use("default", "fp32") as built:
        assert built.variant is kept
    assert len(released) == 2


def test_showers_are_generated_once_and_only_the_missing_ones(builds):
    calls = []

    class Counting(FakeVariant):
        def generate(self, z, energy):
            calls.append(len(energy))
            return np.zeros((len(energy), 25, 25, 25), np.float32)
    s = session_mod.Session(8, 0)
    s.keep("default", "v", Counting("v"))
    inputs = uniform_inputs("paired", 10, (10, 250), seed=1)
    assert s.showers("default", "v", inputs, 4).shape == (4, 25, 25, 25)
    assert s.showers("default", "v", inputs).shape == (10, 25, 25, 25) and calls == [4, 6]
    s.showers("default", "v", inputs, 7)
    assert calls == [4, 6]


def test_measure_speed_gives_one_speed_result_per_batch_size(monkeypatch):
    monkeypatch.setattr(speed, "seconds", lambda call: {"fp32": 0.4, "v": 0.1}[call()])
    inputs = Inputs("x", np.zeros((3, 200), np.float32), np.array([10.0, 20.0, 30.0], np.float32))
    result = measure_speed(FakeVariant("fp32"), FakeVariant("v"), inputs, [1, 8], pairs_within(3.0, most=5))
    assert sorted(result) == [1, 8]
    assert result[8].speedup.median == pytest.approx(4.0) and result[8].speedup.pairs == 5
    assert result[8].showers_per_s == pytest.approx(80.0) and result[8].fp32_showers_per_s == pytest.approx(20.0)
    assert result[1].to_dict()["showers_per_s"] == pytest.approx(10.0)


def test_pairs_within_a_budget():
    policy = pairs_within(3.0, most=7, least=3)
    assert [policy(s) for s in (0.1, 1.0, 2.0, 100.0)] == [7, 3, 3, 3]
    assert pairs_within(10.0, most=7)(2.0) == 5


def test_variant_result_is_the_report_entry():
    assert VariantResult("default", "gone", "d", unavailable="no CPU").to_dict() == {"description": "d",
                                                                                     "unavailable": "no CPU"}
    broken = VariantResult("default", "b", "d", error="ValueError: x", build_s=1.0).to_dict()
    assert broken == {"description": "d", "build_s": 1.0, "error": "ValueError: x"}
    s = speed.Speedup(2.0, 1.8, 2.2, 5, 0.2, 0.1)
    paired = {"ok": True, "status": "PASS", "failures": []}
    entry = VariantResult("default", "v", "d", op_summary="int8 1", speed={32: SpeedResult.from_speedup(32, s)},
                          physics=PhysicsResult(paired), speedup_vs_geant4=[]).to_dict()
    assert entry["keeps_physics"] and entry["physics_status"] == "keeps" and entry["speed_class"] == "faster"
    assert entry["speed"]["32"]["median"] == 2.0 and entry["speed"]["32"]["showers_per_s"] == pytest.approx(320.0)
    assert entry["speedup_at_largest_batch"]["batch"] == 32
    unresolved = PhysicsResult({"ok": False, "status": "cannot tell", "failures": []})
    assert unresolved.status == "cannot_tell" and not unresolved.keeps_physics
