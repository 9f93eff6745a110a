"""Validation suite plumbing: --full, parametrization over (model, variant), known failures, shared showers.

A test module sets ``CHECK = "paired"`` or ``"geant4"`` and takes the arguments ``model`` and ``variant``; it is
run for every model of that check (settings.toml) and every registered variant except ``fp32``. Variants that
cannot run here are skipped with the registry's reason, ``cern2017`` without its weights by the ``cern_weights``
fixture, and registered known failures (known_failures.toml) are marked ``xfail(strict=True)``.
"""

from __future__ import annotations

import functools

import pytest

from gan.machine import Here
from study.inputs import inputs_at, uniform_inputs
from study.session import REFERENCE_VARIANT
from study.settings import load_settings, new_session, read_reference
from verdict import geant4_null, known_failures, requirements
from verdict.checks import ToleranceExceeded, Unresolved, check_geant4, geant4_distances, paired_sequential

SHARED_MODEL = "cern2017"  # its weights come from ../shared (or a cached download): skipped without them
# TF warns on every TFLite int8 conversion without input statistics; the variant's input and output stay float32
BUILD_WARNINGS = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected:UserWarning")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="validation: large samples (sizes in study/settings.toml) and the shared Geant4 "
                          "held-out tail as reference")
    parser.addoption("--requirements", default=None, metavar="TOML",
                     help="validation: your own paired requirements (overrides of verdict/requirements.toml)")


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
        marks.append(pytest.mark.xfail(strict=True, raises=(ToleranceExceeded, Unresolved),
                                       reason=f"known failure ({known.scope()}): {known.reason}"))
    return marks


def pytest_generate_tests(metafunc):
    check = getattr(metafunc.module, "CHECK", None)
    if check is None or not {"model", "variant"} <= set(metafunc.fixturenames):
        return
    settings = load_settings()
    models = settings.models if check == "paired" else settings.geant4_models
    failures, stack = known_failures.load(), Here.now()
    sample = "full" if metafunc.config.getoption("full") else "default"
    metafunc.parametrize(("model", "variant"), [
        pytest.param(model, variant, id=f"{model}-{variant}",
                     marks=_marks(model, variant, check, sample, failures, stack))
        for model in models for variant in _variants()])


@pytest.fixture(scope="session")
def settings(request):
    return load_settings(full=request.config.getoption("full"))


@pytest.fixture(scope="session")
def requirement_table(request):
    """model -> verdict.requirements.Requirements (with the user's --requirements overrides)."""
    user = request.config.getoption("requirements")
    return functools.cache(lambda model: requirements.load(model, user))


@pytest.fixture(scope="session")
def null_table():
    return geant4_null.load()


@pytest.fixture(scope="session")
def shower_cache(settings):
    """The session's study.session.Session: each (model, variant) built once, its showers kept per inputs."""
    return new_session(settings)


@pytest.fixture
def model_available(model, request):
    """The model, once its weights are here (cern2017: else skipped through the cern_weights fixture)."""
    if model == SHARED_MODEL:
        request.getfixturevalue("cern_weights")
    return model


@pytest.fixture(scope="session")
def paired_inputs(settings):
    """model -> the shared seeded inputs of the paired checks (energies uniform over the trained range), as many
    as the largest sequential stage; a stage uses the first so many."""
    from gan.pretrained import trained_energy_range

    return functools.cache(lambda model: uniform_inputs(
        "paired", max(settings.paired_showers), trained_energy_range(model), settings.seed))


def sequential_paired_verdict(shower_cache, model, fp32_showers, inputs, sizes, requirements, title):
    """The paired verdict of a variant whose showers ``fp32_showers(n)`` gives (FP32's from the cache), grown
    through ``sizes`` while it cannot tell."""
    def pair(n):
        return shower_cache.showers(model, REFERENCE_VARIANT, inputs, n), fp32_showers(n), inputs.energy[:n]
    return paired_sequential(pair, sizes, requirements, title)


@pytest.fixture
def paired_verdict(model_available, variant, settings, shower_cache, paired_inputs, requirement_table):
    model = model_available
    inputs = paired_inputs(model)
    return sequential_paired_verdict(shower_cache, model, lambda n: shower_cache.showers(model, variant, inputs, n),
                                     inputs, settings.paired_showers, requirement_table(model),
                                     f"{model}-{variant}: paired shifts vs FP32")


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


@pytest.fixture(scope="session")
def geant4_thresholds(null_table, geant4_inputs):
    return geant4_null.thresholds(null_table, len(geant4_inputs))


@pytest.fixture
def geant4_verdict(model_available, variant, geant4_distance_cache, geant4_inputs, geant4_thresholds):
    model = model_available
    return check_geant4(geant4_distance_cache(model, REFERENCE_VARIANT), geant4_distance_cache(model, variant),
                        geant4_thresholds,
                        title=f"{model}-{variant}: distance to Geant4 vs FP32's ({len(geant4_inputs)} showers)")
