"""The suite can fail: deliberately broken FP32 models are caught by the very checks and tolerances it uses.

A broken "variant" is the FP32 generator with one convolution kernel scaled: conv3d_4 (no bias) x 1.2 is a pure
+20% energy-scale error, conv3d_2 x 1.05 a subtle change of the shower shape. Built here, not in quant's registry.
"""

import numpy as np
import pytest

from validation import tolerances
from validation.checks import ToleranceExceeded, check_geant4, check_paired, geant4_distances
from validation.samples import REFERENCE_VARIANT

pytestmark = [pytest.mark.tf, pytest.mark.slow]

BROKEN = [  # (model, layer, kernel scale, an observable that must fail)
    ("default", "conv3d_4", 1.2, "total_energy_mean"),
    ("cern2017", "conv3d_4", 1.2, "total_energy_mean"),
    ("cern2017", "conv3d_2", 1.05, "transverse_profile_x"),
]


def broken_generator(generator, layer: str, scale: float):
    """A copy of ``generator`` with the kernel of ``layer`` multiplied by ``scale``."""
    import keras

    clone = keras.models.clone_model(generator)
    clone.set_weights(generator.get_weights())
    kernel, *rest = clone.get_layer(layer).get_weights()
    clone.get_layer(layer).set_weights([kernel * np.float32(scale), *rest])
    return clone


def broken_showers(shower_cache, model, layer, scale, inputs):
    from quant import registry

    broken = registry.build(REFERENCE_VARIANT, broken_generator(shower_cache.generator(model), layer, scale), None)
    return broken.generate(inputs.z, inputs.energy)


@pytest.fixture
def model(request):
    return request.param


@pytest.mark.parametrize("model, layer, scale, observable", [
    pytest.param(*case, id=f"{case[0]}-{case[1]}x{case[2]}", marks=[pytest.mark.shared] * (case[0] == "cern2017"))
    for case in BROKEN], indirect=["model"])
def test_broken_model_fails_the_paired_check(model_available, layer, scale, observable, settings, shower_cache,
                                             paired_inputs, tolerance_table):
    model = model_available
    inputs, edges = paired_inputs(model), settings.edges(model)
    tol = tolerances.paired_tolerances(tolerance_table, model, "broken", len(inputs) / (len(edges) - 1))
    fp32 = shower_cache.showers(model, REFERENCE_VARIANT, inputs)
    verdict = check_paired(fp32, broken_showers(shower_cache, model, layer, scale, inputs), inputs.energy,
                           edges, tol, title=f"{model}-{layer}x{scale}")
    with pytest.raises(ToleranceExceeded, match=observable):
        verdict.raise_if_failed()


def test_unbroken_fp32_rerun_passes_the_paired_check(settings, shower_cache, paired_inputs, tolerance_table):
    """The control: FP32 built again from the same weights passes (shifts 0)."""
    inputs, edges = paired_inputs("default"), settings.edges("default")
    fp32 = shower_cache.showers("default", REFERENCE_VARIANT, inputs)
    again = broken_showers(shower_cache, "default", "conv3d_4", 1.0, inputs)
    check_paired(fp32, again, inputs.energy, edges,
                 tolerances.paired_tolerances(tolerance_table, "default", "fp32")).raise_if_failed()


def test_energy_scale_error_fails_the_geant4_check(settings, shower_cache, geant4_reference, geant4_inputs,
                                                   geant4_distance_cache, tolerance_table):
    ref, inputs, edges = geant4_reference, geant4_inputs, settings.edges("default")
    broken = geant4_distances(ref.ecal, ref.energy, broken_showers(shower_cache, "default", "conv3d_4", 1.2, inputs),
                              inputs.energy, edges)
    verdict = check_geant4(geant4_distance_cache("default", REFERENCE_VARIANT), broken,
                           tolerances.geant4_tolerances(tolerance_table, "default", "broken", len(inputs)))
    with pytest.raises(ToleranceExceeded, match="accuracy_metric.total"):
        verdict.raise_if_failed()
