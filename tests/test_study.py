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


# ------------------------------------------------------------------ an unresolved paired verdict grows its sample


class EnergyShowers(FakeVariant):
    """Showers that carry their input energy (every cell), so a test can see which inputs they were made for."""

    def __init__(self, name, calls):
        super().__init__(name)
        self.calls = calls

    def generate(self, z, energy):
        self.calls.append((self.name, len(energy)))
        return np.broadcast_to(np.asarray(energy, np.float32)[:, None, None, None], (len(energy), 25, 25, 25)).copy()


def _grown_context(calls, stages=(400, 1000)):
    from study.runner import ModelContext

    def grown_inputs(n):
        return uniform_inputs("paired", n, (10, 250), seed=7)
    inputs = grown_inputs(100)
    fp32 = EnergyShowers("fp32", calls)
    showers = fp32.generate(inputs.z, inputs.energy)
    calls.clear()
    return ModelContext("default", np.array([10.0, 250.0]), inputs, fp32, showers, None, None, [], None, None, [],
                        "default", stages, grown_inputs)


def made(calls) -> dict[str, int]:
    """Showers generated per variant name."""
    out = {}
    for name, n in calls:
        out[name] = out.get(name, 0) + n
    return out


def test_an_unresolved_paired_verdict_is_regrown_and_a_clear_one_is_not(monkeypatch):
    from study import runner

    decided_at = {"bf16": 400, "fails": 100, "never": 10**9}  # the size at which each variant's verdict is clear
    seen = []

    def paired_entry(fp32, showers, energy, table, title):
        name = title.split(":")[0].split("-", 1)[1]
        # paired: FP32 and variant showers of the same, first n inputs (each shower carries its energy)
        assert len(fp32) == len(showers) == len(energy)
        np.testing.assert_array_equal(fp32[:, 0, 0, 0], energy)
        np.testing.assert_array_equal(showers[:, 0, 0, 0], energy)
        seen.append((name, len(energy)))
        status = ("FAIL" if name == "fails" else "ok") if len(energy) >= decided_at[name] else "cannot tell"
        return {"ok": status == "ok", "status": status, "failures": [], "shifts": {}, "worst": "x", "worst_ratio": 0.5}
    monkeypatch.setattr(runner, "paired_entry", paired_entry)
    calls = []
    ctx = _grown_context(calls)
    largest = uniform_inputs("paired", 1000, (10, 250), seed=7)

    def check(name):
        variant = EnergyShowers(name, calls)
        return runner.check_physics(ctx, name, variant.generate(ctx.inputs.z, ctx.inputs.energy), variant).paired

    bf16 = check("bf16")  # cannot tell at 100, clear at 400: stops there
    assert bf16["status"] == "ok" and bf16["showers"] == 400 and bf16["stages"] == [100, 400]
    assert made(calls) == {"bf16": 400, "fp32": 300}  # only the extra showers, each once (in chunks)
    np.testing.assert_array_equal(ctx.paired_inputs(400).energy, largest.energy[:400])  # the same inputs, extended
    calls.clear()
    fails = check("fails")  # a clear failure at the first stage: no more showers
    assert fails["status"] == "FAIL" and fails["showers"] == 100 and fails["stages"] == [100]
    assert made(calls) == {"fails": 100}
    calls.clear()
    never = check("never")  # unresolved to the last stage; FP32's 300 extra are reused, only 600 more made
    assert never["status"] == "cannot tell" and never["showers"] == 1000 and never["stages"] == [100, 400, 1000]
    assert made(calls) == {"never": 1000, "fp32": 600}
    assert seen == [("bf16", 100), ("bf16", 400), ("fails", 100), ("never", 100), ("never", 400), ("never", 1000)]
    # without the built variant (or without stages) nothing grows
    assert runner.check_physics(ctx, "never", ctx.fp32_showers).paired["stages"] == [100]


def test_paired_stages_are_the_settings_stages_above_the_first():
    from study.runner import StudyConfig, paired_stages

    assert paired_stages(StudyConfig(("default",), ("bf16",)), "default") == (400, 1000)
    assert paired_stages(StudyConfig(("default",), ("bf16",), showers=20), "default") == (100, 400, 1000)
    assert paired_stages(StudyConfig(("default",), ("bf16",), showers=100, max_showers=400), "default") == (400,)
    assert paired_stages(StudyConfig(("default",), ("bf16",), showers=100, max_showers=100), "default") == ()
    assert paired_stages(StudyConfig(("default",), ("bf16",), showers=1000), "full") == (3000,)
