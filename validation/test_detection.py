"""The suite can fail, and fails for the right reasons: a family of deliberate defects on both models.

Each defect is a "variant" made from the FP32 model (not in quant's registry): a shower-energy scale, one kernel
scaled by 1.02-1.05, a BatchNorm variance x1.1, showers generated at 1.05 x E, cells below 1 MeV zeroed, showers
moved by one cell. Every one must FAIL the paired check against the requirement table (a "cannot tell" at the
largest stage fails this test too), on both models; FP32 rebuilt and a 0.5% energy scale must pass.
"""

import numpy as np
import pytest

from study.session import REFERENCE_VARIANT
from validation.conftest import sequential_paired_verdict
from verdict import checks

pytestmark = [pytest.mark.tf, pytest.mark.slow]

MODELS = ["default", "cern2017"]
BROKEN = [  # (name, kind, argument): every one fails on both models
    ("scale_x1.02", "scale", 1.02), ("scale_x0.98", "scale", 0.98), ("scale_x1.05", "scale", 1.05),
    ("scale_x1.08", "scale", 1.08), ("scale_x1.10", "scale", 1.10),
    ("energy_x1.05", "energy", 1.05),
    ("conv3d_1_x1.05", "kernel", ("conv3d_1", 1.05)), ("conv3d_2_x1.05", "kernel", ("conv3d_2", 1.05)),
    ("conv3d_3_x1.05", "kernel", ("conv3d_3", 1.05)), ("conv3d_4_x1.05", "kernel", ("conv3d_4", 1.05)),
    ("conv3d_4_x1.02", "kernel", ("conv3d_4", 1.02)),
    ("bn2_variance_x1.1", "bn_variance", ("batch_normalization_2", 1.1)),
    ("cells_below_1MeV_zeroed", "zero_below", 1e-3),
    ("moved_one_cell_x", "roll", 1),
]
UNBROKEN = [("fp32_rebuilt", "kernel", ("conv3d_4", 1.0)), ("scale_x1.005", "scale", 1.005)]


def modified_generator(generator, layer: str, change):
    """A copy of ``generator`` whose ``layer`` weights are ``change(weights)``."""
    import keras

    clone = keras.models.clone_model(generator)
    clone.set_weights(generator.get_weights())
    clone.get_layer(layer).set_weights(change(clone.get_layer(layer).get_weights()))
    return clone


def _scaled_kernel(scale):
    return lambda w: [w[0] * np.float32(scale), *w[1:]]


def _scaled_variance(scale):
    return lambda w: [*w[:3], w[3] * np.float32(scale)]  # gamma, beta, moving mean, moving variance


def defect_showers(shower_cache, model, inputs, kind, arg):
    """``n -> showers`` of the defective model for the first n inputs."""
    from quant import registry

    fp32 = lambda n: shower_cache.showers(model, REFERENCE_VARIANT, inputs, n)  # noqa: E731
    if kind == "scale":
        return lambda n: fp32(n) * np.float32(arg)
    if kind == "zero_below":
        return lambda n: np.where(fp32(n) < arg, np.float32(0), fp32(n))
    if kind == "roll":
        return lambda n: np.roll(fp32(n), arg, axis=1)
    if kind == "energy":
        built = registry.build(REFERENCE_VARIANT, shower_cache.generator(model), None)
        return lambda n: built.generate(inputs.z[:n], inputs.energy[:n] * np.float32(arg))
    layer, scale = arg
    change = _scaled_kernel(scale) if kind == "kernel" else _scaled_variance(scale)
    built = registry.build(REFERENCE_VARIANT, modified_generator(shower_cache.generator(model), layer, change), None)
    return lambda n: built.generate(inputs.z[:n], inputs.energy[:n])


def _verdict(model, kind, arg, name, settings, shower_cache, paired_inputs, requirement_table):
    inputs = paired_inputs(model)
    showers = defect_showers(shower_cache, model, inputs, kind, arg)
    cache = {}
    return sequential_paired_verdict(shower_cache, model, lambda n: cache.setdefault(n, showers(n)), inputs,
                                     settings.paired_showers, requirement_table(model), f"{model}-{name}")


@pytest.fixture
def model(request):
    return request.param


def _params(cases):
    return [pytest.param(m, *case, id=f"{m}-{case[0]}", marks=[pytest.mark.shared] * (m == "cern2017"))
            for m in MODELS for case in cases]


@pytest.mark.parametrize(("model", "name", "kind", "arg"), _params(BROKEN), indirect=["model"])
def test_defect_fails_the_paired_check(model_available, name, kind, arg, settings, shower_cache, paired_inputs,
                                       requirement_table):
    verdict = _verdict(model_available, kind, arg, name, settings, shower_cache, paired_inputs, requirement_table)
    print(verdict.report().split("\n\n")[0])
    assert verdict.status == checks.FAIL, verdict.report()


@pytest.mark.parametrize(("model", "name", "kind", "arg"), _params(UNBROKEN), indirect=["model"])
def test_harmless_change_passes_the_paired_check(model_available, name, kind, arg, settings, shower_cache,
                                                 paired_inputs, requirement_table):
    _verdict(model_available, kind, arg, name, settings, shower_cache, paired_inputs,
             requirement_table).raise_if_failed()


def test_energy_scale_error_fails_the_geant4_check(settings, shower_cache, geant4_reference, geant4_inputs,
                                                   geant4_distance_cache, geant4_thresholds):
    ref, inputs = geant4_reference, geant4_inputs
    broken = defect_showers(shower_cache, "default", inputs, "kernel", ("conv3d_4", 1.2))(len(inputs))
    distances = checks.geant4_distances(ref.ecal, ref.energy, broken, inputs.energy, settings.edges("default"))
    verdict = checks.check_geant4(geant4_distance_cache("default", REFERENCE_VARIANT), distances, geant4_thresholds)
    assert verdict.status == checks.FAIL, verdict.report()
