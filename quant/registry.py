"""Variant names -> builders, and the families (runtimes) they belong to. Each family module registers itself.

A *family* is one runtime (:class:`Family`: Keras/TensorFlow, OpenVINO, TensorFlow Lite, Intel Neural Compressor)
and declares, once, with its module: its runtime packages (import names: versions in every record of a run,
availability, the scope of speed-up floors), how to pin N threads for that runtime, and its per-layer precision
control if it has one (the sensitivity sweep's runtime). A *variant* (:class:`VariantSpec`) names its family;
its ``build(generator, calibration, context)`` gets a :class:`~quant.context.BuildContext` (model name, trained
energy range, physics requirements).

Adding a backend is one module plus its name in :data:`VARIANT_MODULES` (or, out of tree, in
``$CALOGAN_VARIANT_MODULES``, comma-separated): the module calls :func:`register_family` and :func:`register`.
``tests/test_variant_contract.py`` then runs every contract check on its variants.

Variant modules import their heavy runtimes (TensorFlow Lite, OpenVINO, neural-compressor) lazily, inside the
builder or the ``check`` function, so listing variants is cheap and a missing package is a clean
:class:`~quant.base.VariantUnavailable`, not an ImportError.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quant.base import Variant, VariantError, VariantUnavailable, read_variant_file

if TYPE_CHECKING:
    from collections.abc import Callable

# the modules that declare the families and register their variants: the one list (nothing else is per backend)
VARIANT_MODULES = ("quant.fp32", "quant.bf16", "quant.tflite", "quant.openvino", "quant.inc", "quant.inc_tuned",
                   "quant.auto_mixed", "quant.openvino_tuned", "quant.folded")
MODULES_ENV_VAR = "CALOGAN_VARIANT_MODULES"  # more family modules (comma-separated import names), e.g. plug-ins


@dataclass(frozen=True)
class Family:
    """A runtime that variants run on, declared once by the module that owns it."""

    name: str  # e.g. "openvino"; also the sensitivity sweep's runtime name
    packages: tuple[str, ...]  # import names of its runtime: reported versions, speed-up floor scope
    set_threads: Callable[[int], str] | None = None  # pin N threads for this runtime; returns what it got
    per_layer: Callable[[], object] | None = None  # -> quant.sensitivity.Runtime (per-layer precision control)
    no_per_layer: str = ""  # why there is no per-layer control (said when a sweep asks for one)


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Declare a family; registering the same declaration again (a module re-imported) is a no-op."""
    if _FAMILIES.get(family.name, family) != family:
        raise VariantError(f"variant family '{family.name}' registered twice")
    _FAMILIES[family.name] = family
    return family


def _always_available() -> None:
    return None


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    family: Family
    build: Callable  # (fp32 keras generator, Calibration or None, BuildContext) -> Variant
    load: Callable  # (directory) -> Variant
    check: Callable[[], None] = _always_available  # raises VariantUnavailable with the reason
    slow_build: bool = False  # building tunes or sweeps for minutes: left out of default report/benchmark runs
    # what a save + load round trip keeps: "exact" (bitwise the same showers) or a relative L2 bound (float)
    round_trip: str | float = "exact"


_SPECS: dict[str, VariantSpec] = {}


def register(spec: VariantSpec) -> VariantSpec:
    if spec.name in _SPECS:
        raise VariantError(f"variant '{spec.name}' registered twice")
    register_family(spec.family)
    _SPECS[spec.name] = spec
    return spec


def modules() -> tuple[str, ...]:
    """The family modules: :data:`VARIANT_MODULES` plus those named in ``$CALOGAN_VARIANT_MODULES``."""
    extra = [m.strip() for m in os.environ.get(MODULES_ENV_VAR, "").split(",") if m.strip()]
    return VARIANT_MODULES + tuple(m for m in extra if m not in VARIANT_MODULES)


def _import_all() -> None:
    for module in modules():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a variant module must not import its runtime at module level
                raise


def names() -> list[str]:
    _import_all()
    return sorted(_SPECS)


def get(name: str) -> VariantSpec:
    _import_all()
    if name not in _SPECS:
        raise VariantError(f"unknown variant '{name}'; known variants: {', '.join(sorted(_SPECS))}")
    return _SPECS[name]


def families() -> dict[str, Family]:
    """Family name -> its declaration (every family module imported)."""
    _import_all()
    return dict(sorted(_FAMILIES.items()))


def family(name: str) -> Family:
    found = families()
    if name not in found:
        raise VariantError(f"unknown variant family '{name}'; known: {', '.join(found)}")
    return found[name]


def runtime_packages() -> tuple[str, ...]:
    """Import names of every family's runtime packages (sorted, each once): what a run reports versions of."""
    return tuple(sorted({p for f in families().values() for p in f.packages}))


def packages(name: str) -> tuple[str, ...]:
    """The runtime packages of variant ``name`` (its family's)."""
    return get(name).family.packages


def set_threads(threads: int) -> dict[str, str]:
    """Ask every family's runtime for ``threads`` threads; family -> what it got (said honestly, e.g. "not
    installed" or "NOT the requested 2 (TensorFlow was initialized before)")."""
    if threads < 1:
        raise VariantError(f"threads must be >= 1, got {threads}")
    return {name: f.set_threads(threads) if f.set_threads else "no thread control"
            for name, f in families().items()}


def slow_builds() -> list[str]:
    """Variants whose build takes minutes (tuning, layer sweeps)."""
    return [name for name in names() if _SPECS[name].slow_build]


def unavailable_reason(name: str) -> str | None:
    """None if the variant can run here, else why not (missing package, environment, CPU feature)."""
    try:
        get(name).check()
    except VariantUnavailable as exc:
        return exc.reason
    return None


def build(name: str, generator, calibration, context=None) -> Variant:
    """Build variant ``name`` of ``generator``. ``context``: a :class:`~quant.context.BuildContext`, or the
    model's name ('default', 'cern2017'), or a weight-file path / None (a model of no name: the default model's
    energy range, the strictest requirements)."""
    from quant.context import as_context

    spec = get(name)
    spec.check()
    return spec.build(generator, calibration, as_context(context))


def load(directory) -> Variant:
    spec = get(read_variant_file(directory)["variant"])
    spec.check()
    return spec.load(Path(directory))
