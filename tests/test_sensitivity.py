"""quant.sensitivity: solo / reverse sweeps flag a fragile layer, are cached and deterministic; real OpenVINO run
on a generator with a deliberately fragile conv3d_3 (an outlier channel that int8 cannot represent)."""

import json
from pathlib import Path

import numpy as np
import pytest

from quant import sensitivity, sensitivity_report
from quant.base import VariantError, VariantUnavailable
from quant.calibration import make_calibration
from quant.context import BuildContext
from quant.sensitivity import SOLO, Runtime, Sweep, SweepSettings, run_sweep
from tests.synthetic import synthetic_showers

TOLERANCES = {"total_energy_mean": 0.05, "total_energy_std": 0.5, "longitudinal_profile": 0.1,
              "second_moment_z": 0.2, "hits_mean": 0.2}
CONTEXT = BuildContext(None, (10.0, 250.0), TOLERANCES, "tolerances: the test's")
SMALL = SweepSettings(showers=24, seed=3, bins=2, pairs=1, speed_batch=4)
FRAGILE_SCALE = 1.5  # what int8 in the fake fragile layer does to every cell (+50% energy)
BENIGN_SCALE = 1.005  # per benign layer in int8


class Dense:
    def __init__(self, name):
        self.name = name


class Conv3D(Dense):
    pass


class FakeGenerator:
    """Just enough of a Keras generator for the sweep: named layers and weights."""

    layers = [Dense("dense_1"), Conv3D("conv3d_1"), Conv3D("conv3d_2")]

    def __init__(self, weight=1.0):
        self.weight = weight

    def get_weights(self):
        return [np.full(3, self.weight, np.float32)]


def fp32_generate(z, energy):
    return synthetic_showers(energy, seed=1)


class FakeVariant:
    def __init__(self, scale):
        self.scale = scale

    def generate(self, z, energy):
        return fp32_generate(z, energy) * np.float32(self.scale)


def fake_runtime(builds: list) -> Runtime:
    """int8 on conv3d_2 scales the showers by FRAGILE_SCALE; every other int8 layer by BENIGN_SCALE."""

    def build(generator, calibration, assignment):
        builds.append(dict(assignment))
        scale = 1.0
        for layer, precision in assignment.items():
            if precision == "int8":
                scale *= FRAGILE_SCALE if layer == "conv3d_2" else BENIGN_SCALE
        return FakeVariant(scale)

    return Runtime("fake", ("int8",), build, builder="fake")


def sweep(cache_dir, builds, settings=SMALL, **kwargs):
    kwargs = {"reverse": True, "activations": False, "cache_dir": cache_dir, "context": CONTEXT,
              "reference": fp32_generate, "log": lambda message: None, **kwargs}
    return run_sweep(kwargs.pop("generator", FakeGenerator()), make_calibration(8, seed=0), "int8",
                     fake_runtime(builds), model="fake", settings=settings, **kwargs)


def test_solo_sweep_flags_the_fragile_layer_and_reverse_sweep_clears_it(tmp_path):
    result = sweep(tmp_path, [])
    assert result.fragile() == ["conv3d_2"]
    solo, reverse = result.solo(), result.reverse()
    assert solo["conv3d_2"].worst_ratio == pytest.approx((FRAGILE_SCALE - 1) / TOLERANCES["total_energy_mean"],
                                                         rel=1e-3)
    assert all(np.allclose(s, FRAGILE_SCALE - 1, atol=1e-4) for s in solo["conv3d_2"].energy_shift)
    assert solo["dense_1"].accepted and solo["conv3d_1"].accepted
    assert reverse["conv3d_2"].accepted  # everything int8 but the fragile layer
    assert not reverse["dense_1"].accepted and not result.baseline()["(all)"].accepted
    assert result.baseline()["(none)"].worst_ratio == 0.0 and result.baseline()["(none)"].speedup == 1.0
    assert solo["conv3d_2"].assignment == {"dense_1": "fp32", "conv3d_1": "fp32", "conv3d_2": "int8"}


def test_second_run_reads_the_cache_without_building(tmp_path):
    builds = []
    first = sweep(tmp_path, builds)
    n = len(builds)
    again = sweep(tmp_path, builds)
    assert len(builds) == n and again.from_cache and not first.from_cache
    assert [r.worst_ratio for r in again.rows] == [r.worst_ratio for r in first.rows]
    assert again.cache_path == first.cache_path


@pytest.mark.parametrize("change", [{"settings": SweepSettings(24, 4, 2, 1, 4)},
                                    {"generator": FakeGenerator(weight=2.0)},
                                    {"refresh": True}])
def test_other_seed_weights_or_refresh_measure_again(tmp_path, change):
    builds = []
    sweep(tmp_path, builds)
    n = len(builds)
    assert not sweep(tmp_path, builds, **change).from_cache
    assert len(builds) == 2 * n


def test_reverse_sweep_reuses_the_cached_solo_rows(tmp_path):
    builds = []
    sweep(tmp_path, builds, reverse=False)
    solo_builds = len(builds)
    full = sweep(tmp_path, builds, reverse=True)
    assert len(builds) - solo_builds == 1 + 3 + 1  # all int8, three reverse rows, the runtime's FP32 reference
    assert {r.sweep for r in full.rows} == {"baseline", "solo", "reverse"}


def test_unreadable_cache_is_ignored_and_rewritten(tmp_path):
    messages = []
    first = sweep(tmp_path, [])
    path = Path(first.cache_path)
    path.write_text("{not json")
    again = sweep(tmp_path, [], log=messages.append)
    assert not again.from_cache and any("unreadable cache" in m for m in messages)
    assert json.loads(path.read_text())["key"] == first.key


def test_sweep_is_deterministic_and_round_trips_json(tmp_path):
    a = sweep(tmp_path / "a", [])
    b = sweep(tmp_path / "b", [])
    physics = [(r.sweep, r.layer, r.worst_ratio, r.accuracy_metric, r.energy_shift) for r in a.rows]
    assert physics == [(r.sweep, r.layer, r.worst_ratio, r.accuracy_metric, r.energy_shift) for r in b.rows]
    back = Sweep.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.rows == a.rows and back.key == a.key


def test_table_and_figure(tmp_path):
    result = sweep(tmp_path, [])
    table = sensitivity_report.format_table(result)
    assert "**FRAGILE**" in table and "Fragile alone: conv3d_2" in table
    assert table.count("| solo |") == 3 and table.count("| reverse |") == 3
    paths = sensitivity_report.write_report(result, tmp_path / "out", "fake-int8")
    assert [p.suffix for p in paths] == [".md", ".json", ".png"]
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_runtimes_without_per_layer_control_are_a_clear_skip():
    for name in ("tflite", "inc"):
        with pytest.raises(VariantUnavailable, match="per-layer"):
            sensitivity.get_runtime(name)
    with pytest.raises(VariantError, match="unknown runtime 'tensorrt'"):
        sensitivity.get_runtime("tensorrt")


@pytest.mark.parametrize(("argv", "message"), [
    (["--runtime", "tflite"], "no per-layer precision control"),
    (["--showers", "3", "--bins", "2"], "at least 2 showers per energy bin")])
def test_cli_refuses_bad_requests_in_one_line(argv, message, capsys):
    from quant.cli import main

    assert main(["sensitivity", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_target_the_runtime_cannot_set_is_refused(tmp_path):
    runtime = Runtime("fake", ("int8",), lambda *a: None)
    with pytest.raises(VariantUnavailable, match="no per-layer bf16"):
        run_sweep(FakeGenerator(), make_calibration(8, seed=0), "bf16", runtime, CONTEXT, cache_dir=tmp_path)
    with pytest.raises(VariantError, match="at least 2 showers per energy bin"):
        SweepSettings(showers=3, bins=2)


def test_physics_inputs_span_the_build_contexts_energy_range(tmp_path):
    context = BuildContext("cern2017", (100.0, 500.0), TOLERANCES, "tolerances: the test's")
    result = sweep(tmp_path, [], reverse=False, context=context)
    assert result.edges[0] == 100.0 and result.edges[-1] == 500.0 and result.key["energy_range_gev"] == [100, 500]
    assert "tolerances: the test's" in result.notes


# ------------------------------------------------------------------ real runtimes


@pytest.mark.tf
def test_glue_layers_follow_so_the_hand_mix_is_int8_bf16_exactly(seeded_generator):
    pytest.importorskip("openvino")
    from quant import openvino

    hand = {"dense_1": "int8", "conv3d_1": "int8", "conv3d_2": "int8", "conv3d_3": "bf16", "conv3d_4": "bf16"}
    full = sensitivity.full_assignment(seeded_generator, hand)
    assert openvino.resolve_precisions(seeded_generator, full) == \
        openvino.resolve_precisions(seeded_generator, openvino.SAFE_MIX, default="bf16")
    solo = sensitivity.full_assignment(seeded_generator, {"conv3d_3": "bf16"})
    assert {k for k, v in solo.items() if v == "bf16"} == {"conv3d_3", "leaky_re_lu_3"}
    assert "up_sampling3d_2" not in sensitivity.full_assignment(seeded_generator, {"conv3d_3": "int8"})


def fragile_copy(generator, channel=0, factor=1000.0):
    """A copy of ``generator`` computing the same showers, whose conv3d_3 input channel ``channel`` is scaled up by
    ``factor`` (BatchNorm gamma and beta) and its conv3d_3 weights down by it: FP32 does not notice, but
    per-tensor int8 takes its scale from that channel and rounds the other channels of the input to zero."""
    import keras

    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    bn = copy.get_layer("batch_normalization_2")
    gamma, beta, mean, var = bn.get_weights()
    gamma[channel] *= factor
    beta[channel] *= factor
    bn.set_weights([gamma, beta, mean, var])
    conv = copy.get_layer("conv3d_3")
    kernel, bias = conv.get_weights()
    kernel[:, :, :, channel, :] /= factor
    conv.set_weights([kernel, bias])
    return copy


@pytest.fixture(scope="module")
def fragile_generator(seeded_generator):
    return fragile_copy(seeded_generator)


@pytest.mark.tf
@pytest.mark.slow
def test_openvino_int8_sweep_finds_the_fragile_layer_by_itself(fragile_generator, seeded_generator, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from gan.model import generate

    calibration = make_calibration(16, seed=0)
    z = np.random.default_rng(0).standard_normal((4, 200)).astype(np.float32)
    energy = np.array([20, 80, 150, 240], np.float32)
    np.testing.assert_allclose(generate(fragile_generator, z, energy), generate(seeded_generator, z, energy),
                               rtol=1e-3, atol=1e-5)  # same FP32 showers
    settings = SweepSettings(showers=32, seed=1, bins=2, pairs=1, speed_batch=8)
    result = run_sweep(fragile_generator, calibration, "int8", "openvino", CONTEXT, model="fragile",
                       settings=settings, reverse=False, cache_dir=tmp_path, log=lambda message: None)
    solo = result.solo()
    assert "conv3d_3" in result.fragile()
    assert max(solo, key=lambda layer: solo[layer].worst_ratio) == "conv3d_3"
    stats = {s.layer: s for s in result.activations}
    assert stats["conv3d_3"].rounded_to_zero > 0.75  # most of the five order-1 channels of six
    assert stats["conv3d_2"].rounded_to_zero < 0.5
    assert all(r.sweep == SOLO or r.layer == "(none)" for r in result.rows)

    def cached(**change):
        kwargs = {"settings": settings, "cache_dir": tmp_path, "generator": fragile_generator,
                  "calibration": calibration, "context": CONTEXT, **change}
        return sensitivity.cached_results("fragile", "int8", **kwargs)

    assert cached().rows == result.rows  # what the report reads: never measures
    assert cached(settings=SweepSettings(showers=32, seed=2, bins=2, pairs=1, speed_batch=8)) is None
