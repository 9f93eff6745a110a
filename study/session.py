"""The per-session cache of a study: each model's FP32 generator, each (model, variant) built once, each variant's
showers for each set of inputs generated once.

Memory is a product requirement (``python -m report`` peaks at ~2.5 GB, ``tests/test_report_memory.py`` guards
3 GB): :meth:`Session.use` builds a variant for one use and releases it afterwards (:func:`release_memory`), unless
it is kept (:meth:`Session.variant`, e.g. the FP32 reference every variant is timed against). The pytest suites
keep what they build for the whole session (a variant is parametrized over batch sizes and checks).

The report, the validation suite and the benchmarks build variants only here (:func:`quant.registry.build`, with
the model's name as its build context); the command lines of quant, production's workers and ``calogan check``
build the one variant they need directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from study.inputs import Inputs

REFERENCE_VARIANT = "fp32"
GENERATE_CHUNK = 64  # showers per generate() call: activations grow with the batch
# TF warns on every TFLite int8 conversion without input statistics; the variant's input and output stay float32
QUIET_BUILD = "Statistics for quantized inputs were expected"


def release_memory() -> None:
    """Hand freed memory back to the OS: Python's cycles, then glibc's free lists, so the next variant starts
    from the shared baseline instead of on top of the last one's heap."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: freed memory is reused all the same
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def generate_in_chunks(variant, z: np.ndarray, energy: np.ndarray, chunk: int = GENERATE_CHUNK) -> np.ndarray:
    """Showers (N, 25, 25, 25) GeV of ``variant`` for inputs (z, energy GeV), ``chunk`` at a time (bounded memory)."""
    if len(energy) == 0:
        return np.empty((0, 25, 25, 25), np.float32)
    parts = [variant.generate(z[i:i + chunk], energy[i:i + chunk]) for i in range(0, len(energy), chunk)]
    return np.concatenate(parts).astype(np.float32, copy=False)


@dataclass
class Built:
    """A built variant and the seconds its build took."""

    variant: object  # quant.base.Variant
    build_s: float


class Session:
    """Builds each model's generator and each (model, variant) once; keeps each variant's showers per Inputs."""

    def __init__(self, calibration_showers: int, calibration_seed: int):
        self.calibration_showers, self.calibration_seed = calibration_showers, calibration_seed
        self._generators: dict[str, object] = {}
        self._built: dict[tuple[str, str], Built | Exception] = {}
        self._showers: dict[tuple[str, str, str], np.ndarray] = {}

    # -------------------------------------------------------------- building

    def generator(self, model: str):
        """The FP32 Keras generator of ``model`` ('default', 'cern2017' or a weight-file path)."""
        if model not in self._generators:
            from gan.pretrained import load_generator

            self._generators[model] = load_generator(model)
        return self._generators[model]

    def calibration(self, model: str):
        """Seeded calibration inputs over ``model``'s trained energy range."""
        from gan.pretrained import trained_energy_range
        from quant.calibration import make_calibration

        return make_calibration(self.calibration_showers, self.calibration_seed, trained_energy_range(model))

    def build(self, model: str, name: str) -> Built:
        """Build variant ``name`` of ``model`` now (not cached); raises quant.base.VariantUnavailable / errors."""
        from quant import registry

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=QUIET_BUILD)
            variant = registry.build(name, self.generator(model), self.calibration(model), model)
        return Built(variant, time.perf_counter() - start)

    def built(self, model: str, name: str) -> Built:
        """The kept build of ``name`` (built on first use); a VariantUnavailable is remembered and raised again."""
        from quant.base import VariantUnavailable

        key = (model, name)
        if key not in self._built:
            try:
                self._built[key] = self.build(model, name)
            except VariantUnavailable as exc:
                self._built[key] = exc
        found = self._built[key]
        if isinstance(found, Exception):
            raise found
        return found

    def keep(self, model: str, name: str, variant) -> None:
        """Keep ``variant`` (built or loaded elsewhere, e.g. a saved candidate) as ``name`` of ``model``."""
        self._built[model, name] = Built(variant, 0.0)

    def variant(self, model: str, name: str):
        """The kept built variant ``name`` of ``model`` (``fp32``: the FP32 reference itself)."""
        return self.built(model, name).variant

    def build_seconds(self, model: str, name: str) -> float:
        return self.built(model, name).build_s

    @contextlib.contextmanager
    def use(self, model: str, name: str):
        """Yield the :class:`Built` of ``name``: the kept one if there is one, else a fresh build released (with
        its memory) when the block ends, so that one variant at a time is in memory."""
        key = (model, name)
        if isinstance(self._built.get(key), Built):
            yield self._built[key]
            return
        built = None
        try:
            built = self.build(model, name)
            yield built
        finally:
            del built
            release_memory()

    def release(self, model: str, name: str | None = None) -> None:
        """Forget the kept build(s) of ``model`` (all of its variants if ``name`` is None) and their showers."""
        for key in [k for k in self._built if k[0] == model and name in (None, k[1])]:
            del self._built[key]
        for key in [k for k in self._showers if k[0] == model and name in (None, k[1])]:
            del self._showers[key]
        release_memory()

    # -------------------------------------------------------------- showers

    def showers(self, model: str, name: str, inputs: Inputs, n: int | None = None) -> np.ndarray:
        """Showers (n, 25, 25, 25) GeV of variant ``name`` of ``model`` for the first n (default: all) ``inputs``;
        each shower is generated once, a larger n generates only the missing ones."""
        key, n = (model, name, inputs.name), len(inputs) if n is None else min(n, len(inputs))
        have = self._showers.get(key, np.empty((0, 25, 25, 25), np.float32))
        if len(have) < n:
            more = generate_in_chunks(self.variant(model, name), inputs.z[len(have):n], inputs.energy[len(have):n])
            have = self._showers[key] = np.concatenate([have, more])
        return have[:n]
