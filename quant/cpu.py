"""The CPU features a variant needs before it can be built (the facts come from :mod:`gan.machine`)."""

from __future__ import annotations

from gan import machine
from gan.machine import AMX_BF16, BF16_FLAGS, INT8_FLAGS, has_any
from quant.base import VariantUnavailable

__all__ = ["AMX_BF16", "BF16_FLAGS", "INT8_FLAGS", "has_any", "require_any"]


def require_any(variant: str, flags, what: str) -> None:
    """Raise VariantUnavailable unless the CPU has one of ``flags``."""
    if not machine.has_any(flags):
        raise VariantUnavailable(variant, f"needs {what} (CPU flag {' or '.join(flags)}); this CPU has none")
