"""Variant names -> builders. Each variant module registers its specs when imported.

Variant modules import their heavy runtimes (TensorFlow Lite, OpenVINO, neural-compressor) lazily, inside the
builder or the ``check`` function, so listing variants is cheap and a missing package is a clean
:class:`~quant.base.VariantUnavailable`, not an ImportError.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from quant.base import Variant, VariantError, read_variant_file

VARIANT_MODULES = ("quant.fp32", "quant.bf16", "quant.tflite", "quant.openvino", "quant.inc", "quant.inc_tuned",
                   "quant.auto_mixed", "quant.openvino_tuned", "quant.folded")


def _always_available() -> None:
    return None


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    build: Callable  # (fp32 keras generator, Calibration) -> Variant
    load: Callable  # (directory) -> Variant
    check: Callable[[], None] = _always_available  # raises VariantUnavailable with the reason
    slow_build: bool = False  # building tunes or sweeps for minutes: left out of default report/benchmark runs


_SPECS: dict[str, VariantSpec] = {}


def register(spec: VariantSpec) -> VariantSpec:
    if spec.name in _SPECS:
        raise VariantError(f"variant '{spec.name}' registered twice")
    _SPECS[spec.name] = spec
    return spec


def _import_all() -> None:
    for module in VARIANT_MODULES:
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


def slow_builds() -> list[str]:
    """Variants whose build takes minutes (tuning, layer sweeps)."""
    return [name for name in names() if _SPECS[name].slow_build]


def unavailable_reason(name: str) -> str | None:
    """None if the variant can run here, else why not (missing package, environment, CPU feature)."""
    from quant.base import VariantUnavailable

    try:
        get(name).check()
    except VariantUnavailable as exc:
        return exc.reason
    return None


def build(name: str, generator, calibration) -> Variant:
    spec = get(name)
    spec.check()
    return spec.build(generator, calibration)


def load(directory) -> Variant:
    spec = get(read_variant_file(directory)["variant"])
    spec.check()
    return spec.load(Path(directory))
