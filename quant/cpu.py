"""CPU instruction-set features that decide which reduced-precision kernels can run (Linux /proc/cpuinfo)."""

from __future__ import annotations

import functools
from pathlib import Path

from quant.base import VariantUnavailable

INT8_FLAGS = ("avx512_vnni", "amx_int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
AMX_BF16 = ("amx_bf16",)  # bf16 convolutions on AMX tiles (where the TF 2.21 conv1 bug shows)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The flags of the first processor in /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def has_any(flags) -> bool:
    return bool(cpu_flags() & set(flags))


def require_any(variant: str, flags, what: str) -> None:
    """Raise VariantUnavailable unless the CPU has one of ``flags``."""
    if not has_any(flags):
        raise VariantUnavailable(variant, f"needs {what} (CPU flag {' or '.join(flags)}); this CPU has none")
