"""The contract every registered variant keeps, one fixture parametrized over ``registry.names()``.

Each variant is built once from the embedded ``default`` generator with a *quick* build context
(:class:`quant.context.BuildContext`, ``quick=True``: tuners score on 32 showers, auto-mixed sweeps one layer,
no sweep cache), so the tuned variants take seconds, not minutes; what is checked is the interface, not the
physics (that is the validation suite's). For every variant:

- ``generate(z, E)``: showers (N, 25, 25, 25), float32, finite, non-negative (GeV);
- ``save`` then ``quant.registry.load``: the same name, size, op-report rows and showers (bitwise, or within the
  relative L2 the variant declares as ``VariantSpec.round_trip``);
- ``op_report()``: names the variant, has rows, every precision a known one;
- ``size_bytes()`` > 0;
- a variant that cannot run here (package, environment, CPU feature) is a skip with its reason, never an error;
- its family declares runtime packages and a thread setter that says what it got.

A backend added later is covered without a test of its own: ``test_a_backend_added_at_runtime_is_covered``
registers ``tests/toy_backend.py`` through ``$CALOGAN_VARIANT_MODULES`` and runs this file on it.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from quant import registry
from quant.base import OpReport, VariantUnavailable

pytestmark = [
    pytest.mark.tf,
    # TF warns on every TFLite int8 conversion without input statistics; the variant's input and output stay float32
    pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected:UserWarning"),
]

MODEL = "default"
SHOWERS = 4  # per variant: the contract, not the physics
PRECISIONS = {"int8", "bf16", "fp16", "fp32", "none"}  # "none": folded away by the runtime
NAMES = registry.names()


@dataclass
class Built:
    name: str
    variant: object
    showers: np.ndarray


@pytest.fixture(scope="module")
def generator():
    from gan.pretrained import load_generator

    return load_generator(MODEL)


@pytest.fixture(scope="module")
def context():
    from quant.context import BuildContext

    return BuildContext.for_model(MODEL, quick=True)


@pytest.fixture(scope="module")
def calibration(context):
    from quant.calibration import make_calibration

    return make_calibration(16, seed=0, energy_range=context.energy_range_gev)


@pytest.fixture(scope="module")
def inputs(context):
    from gan.model import sample_latent

    return sample_latent(SHOWERS, seed=3), np.linspace(*context.energy_range_gev, SHOWERS, dtype=np.float32)


@pytest.fixture(scope="module", params=NAMES)
def built(request, generator, calibration, context, inputs):
    """One variant, built once for all the contract's tests and released after them (module scope: pytest runs
    a parameter's tests together). Unavailable here: a skip with the reason."""
    name = request.param
    try:
        variant = registry.build(name, generator, calibration, context)
    except VariantUnavailable as exc:
        pytest.skip(f"{name} not available here: {exc.reason}")
    yield Built(name, variant, variant.generate(*inputs))
    del variant
    gc.collect()


def test_generate_gives_showers(built):
    showers = built.showers
    assert isinstance(showers, np.ndarray)
    assert showers.shape == (SHOWERS, 25, 25, 25) and showers.dtype == np.float32
    assert np.all(np.isfinite(showers)) and showers.min() >= 0


def test_save_and_load_give_the_same_showers(built, inputs, tmp_path):
    directory = built.variant.save(tmp_path / built.name)
    loaded = registry.load(directory)
    assert loaded.name == built.name and loaded.size_bytes() == built.variant.size_bytes()
    assert loaded.op_report().rows == built.variant.op_report().rows
    again = loaded.generate(*inputs)
    assert again.shape == built.showers.shape and again.dtype == np.float32
    tolerance = registry.get(built.name).round_trip
    if tolerance == "exact":
        np.testing.assert_array_equal(again, built.showers)
    else:
        error = np.linalg.norm(again - built.showers) / max(np.linalg.norm(built.showers), 1e-30)
        assert error <= tolerance, f"round trip moved the showers by relative L2 {error:.3g} > {tolerance:g}"


def test_op_report_names_the_variant_and_its_precisions(built):
    report = built.variant.op_report()
    assert isinstance(report, OpReport) and report.variant == built.name
    assert report.rows and report.source
    assert {row.precision for row in report.rows} <= PRECISIONS
    assert report.format().startswith(built.name) and report.summary()


def test_size_is_positive(built):
    size = built.variant.size_bytes()
    assert isinstance(size, int) and size > 0


@pytest.mark.parametrize("name", NAMES)
def test_family_declares_packages_and_unavailability_is_a_reason(name):
    spec = registry.get(name)
    assert spec.family is registry.family(spec.family.name)
    assert spec.family.packages and all(isinstance(p, str) and p.isidentifier() for p in spec.family.packages)
    assert set(spec.family.packages) <= set(registry.runtime_packages())
    assert spec.round_trip == "exact" or 0 < spec.round_trip < 1
    reason = registry.unavailable_reason(name)
    assert reason is None or (isinstance(reason, str) and reason)


def test_every_family_pins_threads_and_says_what_it_got(monkeypatch):
    from quant import tflite

    monkeypatch.setitem(tflite._THREADS, "num_threads", None)  # leave later interpreters at the default
    threads = len(os.sched_getaffinity(0))
    got = registry.set_threads(threads)
    assert set(got) == set(registry.families())
    assert all(isinstance(text, str) and text for text in got.values())


def test_an_unavailable_variant_is_refused_before_building(monkeypatch):
    spec = registry.get("fp32")

    def unavailable():
        raise VariantUnavailable("fp32", "pretend: missing runtime")

    def never(*args):
        raise AssertionError("built although unavailable")

    monkeypatch.setitem(registry._SPECS, "fp32", registry.VariantSpec(
        spec.name, spec.description, spec.family, never, spec.load, unavailable))
    assert registry.unavailable_reason("fp32") == "pretend: missing runtime"
    with pytest.raises(VariantUnavailable, match="pretend"):
        registry.build("fp32", None, None)


def test_a_backend_added_at_runtime_is_covered():
    """tests/toy_backend.py, registered through $CALOGAN_VARIANT_MODULES, gets every contract test above."""
    tests = Path(__file__).parent
    env = {**os.environ, registry.MODULES_ENV_VAR: "toy_backend",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tests), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-k", "toy"],
                         cwd=tests.parent, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # 4 contract tests on the built variant, 1 family/availability test
    assert "5 passed" in run.stdout, run.stdout[-3000:]
