"""Validation suite plumbing: --full, parametrization over (model, variant), known failures, shared showers.

A test module sets ``CHECK = "paired"`` or ``"geant4"`` and takes the arguments ``model`` and ``variant``; it is
run for every model of that check (settings.toml) and every registered variant except ``fp32``. Variants that
cannot run here are skipped with the registry's reason, ``cern2017`` without its weights by the ``cern_weights``
fixture, and registered known failures (known_failures.toml) are marked ``xfail(strict=True)``.
"""

from __future__ import annotations

import functools

import pytest

from validation import known_failures, tolerances
from validation.checks import ToleranceExceeded, check_geant4, check_paired, geant4_distances
from validation.samples import REFERENCE_VARIANT, ShowerCache, inputs_at, load_settings, read_reference, uniform_inputs

SHARED_MODEL = "cern2017"  # its weights come from ../shared (or a cached download): skipped without them
# TF warns on every TFLite int8 conversion without input statistics; the variant's input and output stay float32
BUILD_WARNINGS = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected:UserWarning")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="validation: large samples (sizes in validation/settings.toml) and the shared Geant4 "
                          "held-out tail as reference")


def _variants() -> list[str]:
    from quant import registry

    return [name for name in registry.names() if name != REFERENCE_VARIANT]


def _marks(model: str, variant: str, check: str, sample: str, failures, stack) -> list:
    from quant import registry

    reason = registry.unavailable_reason(variant)
    if reason:
        return [pytest.mark.skip(reason=f"variant {variant} not available here: {reason}")]
    marks = [BUILD_WARNINGS] + ([pytest.mark.shared] if model == SHARED_MODEL else [])
    known = known_failures.find(failures, model, variant, check, stack, sample)
    if known is not None:
        marks.append(pytest.mark.xfail(strict=True, raises=ToleranceExceeded,
                                       reason=f"known failure ({known.scope()}): {known.reason}"))
    return marks


def pytest_generate_tests(metafunc):
    check = getattr(metafunc.module, "CHECK", None)
    if check is None or not {"model", "variant"} <= set(metafunc.fixturenames):
        return
    settings = load_settings()
    models = settings.models if check == "paired" else settings.geant4_models
    failures, stack = known_failures.load(), known_failures.Stack.here()
    sample = "full" if metafunc.config.getoption("full") else "default"
    metafunc.parametrize(("model", "variant"), [
        pytest.param(model, variant, id=f"{model}-{variant}",
                     marks=_marks(model, variant, check, sample, failures, stack))
        for model in models for variant in _variants()])


@pytest.fixture(scope="session")
def settings(request):
    return load_settings(full=request.config.getoption("full"))


@pytest.fixture(scope="session")
def tolerance_table():
    return tolerances.load()


@pytest.fixture(scope="session")
def shower_cache(settings):
    return ShowerCache(settings)


@pytest.fixture(scope="session")
def weights_sha256():
    """model -> sha256 of its weight file, computed once."""
    from gan.pretrained import resolve_weights, sha256sum

    return functools.cache(lambda model: sha256sum(resolve_weights(model)))


@pytest.fixture
def model_available(model, request, tolerance_table, weights_sha256):
    """The model, once its weights are here (cern2017: else skipped through the cern_weights fixture) and are the
    weights its tolerances were measured for (else the test fails, asking for a re-measurement)."""
    if model == SHARED_MODEL:
        request.getfixturevalue("cern_weights")
    stale = tolerances.stale_reason(tolerance_table, model, weights_sha256(model))
    if stale:
        pytest.fail(stale, pytrace=False)
    return model


@pytest.fixture(scope="session")
def paired_inputs(settings):
    """model -> the shared seeded inputs of the paired checks (energies uniform over the trained range)."""
    from gan.pretrained import trained_energy_range

    return functools.cache(
        lambda model: uniform_inputs("paired", settings.paired_showers, trained_energy_range(model), settings.seed))


@pytest.fixture
def paired_verdict(model_available, variant, settings, shower_cache, paired_inputs, tolerance_table):
    model = model_available
    inputs = paired_inputs(model)
    fp32 = shower_cache.showers(model, REFERENCE_VARIANT, inputs)
    showers = shower_cache.showers(model, variant, inputs)
    edges = settings.edges(model)
    per_bin = len(inputs) / (len(edges) - 1)
    return check_paired(fp32, showers, inputs.energy, edges,
                        tolerances.paired_tolerances(tolerance_table, model, variant, per_bin),
                        title=f"{model}-{variant}: paired shifts vs FP32 ({len(inputs)} showers)")


@pytest.fixture(scope="session")
def geant4_reference(settings, request):
    """Held-out Geant4 showers: embedded sample, or with --full the shared file's tail where it exists."""
    shared = None
    if settings.full:
        try:
            shared = request.getfixturevalue("g4_data_path")
        except pytest.skip.Exception:
            shared = None
    return read_reference(settings, shared)


@pytest.fixture(scope="session")
def geant4_inputs(geant4_reference, settings):
    return inputs_at("geant4", geant4_reference.energy, settings.seed + 1)


@pytest.fixture(scope="session")
def geant4_distance_cache(geant4_reference, geant4_inputs, settings, shower_cache):
    """(model, variant) -> distances of its showers (at the reference energies) from Geant4, computed once."""
    cache = {}

    def get(model: str, variant: str) -> dict:
        if (model, variant) not in cache:
            showers = shower_cache.showers(model, variant, geant4_inputs)
            cache[model, variant] = geant4_distances(geant4_reference.ecal, geant4_reference.energy, showers,
                                                     geant4_inputs.energy, settings.edges(model))
        return cache[model, variant]
    return get


@pytest.fixture
def geant4_verdict(model_available, variant, geant4_distance_cache, geant4_inputs, tolerance_table):
    model = model_available
    return check_geant4(geant4_distance_cache(model, REFERENCE_VARIANT), geant4_distance_cache(model, variant),
                        tolerances.geant4_tolerances(tolerance_table, model, variant, len(geant4_inputs)),
                        title=f"{model}-{variant}: distance to Geant4 vs FP32's ({len(geant4_inputs)} showers)")
